// report-browser.js — opens a report page in headless Chromium through the
// DevTools protocol (over --remote-debugging-pipe: no npm package needed) and
// checks what a person would see: every figure laid out with a size, every
// embedded picture decodes, nothing fetched but the page itself (file:) and
// its data: URIs, no console error, warning or exception, no horizontal
// scrolling at a laptop's width (1280 px), and a PDF printed with the print
// style. Writes a full-page screenshot (and the PDF) for people to look at.
//
//   node report-browser.js CHROMIUM PAGE.html SCREENSHOT.png PDF
//
// Prints one "ok:" or "FAIL:" line per check; exits 1 on any failure.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [chromium, page, shot, pdf] = process.argv.slice(2);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-report-browser-'));
const browser = spawn(chromium, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-extensions', '--disable-background-networking', '--remote-debugging-pipe',
    `--user-data-dir=${profile}`, 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
browser.stderr.on('data', (d) => { stderr += d; });

let failed = 0;
function check(what, ok, detail) {
    console.log(`${ok ? 'ok' : 'FAIL'}: ${what}${!ok && detail ? ` (${detail})` : ''}`);
    if (!ok)
        failed++;
}

const pending = new Map();
const listeners = [];
let nextId = 1;
let buffer = '';
browser.stdio[4].on('data', (chunk) => {
    buffer += chunk.toString('utf8');
    let end;
    while ((end = buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
        if (message.id !== undefined && pending.has(message.id)) {
            const { resolve, reject } = pending.get(message.id);
            pending.delete(message.id);
            if (message.error)
                reject(new Error(JSON.stringify(message.error)));
            else
                resolve(message.result);
        } else if (message.method) {
            for (const listen of listeners)
                listen(message);
        }
    }
});

function send(method, params = {}, sessionId) {
    const id = nextId++;
    browser.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + '\0');
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

function waitFor(method) {
    return new Promise((resolve) => listeners.push((m) => { if (m.method === method) resolve(m); }));
}

async function main() {
    const problems = [];
    const fetched = [];
    listeners.push((m) => {
        if (m.method === 'Runtime.exceptionThrown')
            problems.push(m.params.exceptionDetails.text);
        else if (m.method === 'Runtime.consoleAPICalled' &&
                 ['error', 'warning', 'assert'].includes(m.params.type))
            problems.push(m.params.args.map((a) => a.value).join(' '));
        else if (m.method === 'Log.entryAdded' && ['error', 'warning'].includes(m.params.entry.level))
            problems.push(m.params.entry.text);
        else if (m.method === 'Network.requestWillBeSent')
            fetched.push(m.params.request.url);
    });
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const s = (method, params) => send(method, params, sessionId);
    for (const domain of ['Runtime', 'Log', 'Page', 'Network'])
        await s(`${domain}.enable`);
    await s('Emulation.setDeviceMetricsOverride',
            { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false });
    const loaded = waitFor('Page.loadEventFired');
    await s('Page.navigate', { url: 'file://' + path.resolve(page) });
    await loaded;

    const { result } = await s('Runtime.evaluate', {
        awaitPromise: true,
        returnByValue: true,
        expression: `(async () => {
            const figures = [...document.querySelectorAll('figure')];
            const empty = figures.filter((f) => {
                const r = f.getBoundingClientRect();
                return r.width < 20 || r.height < 20;
            }).map((f) => f.textContent.slice(0, 60));
            const hrefs = [...document.querySelectorAll('image')].map((i) => i.getAttribute('href'));
            const broken = [];
            for (const href of hrefs) {
                const img = new Image();
                img.src = href;
                try {
                    await img.decode();
                    if (img.naturalWidth < 1)
                        broken.push(href.slice(0, 40));
                } catch (e) {
                    broken.push(href.slice(0, 40));
                }
            }
            return { figures: figures.length, svgs: document.querySelectorAll('figure svg').length,
                     empty, pictures: hrefs.length, broken,
                     scroll: document.documentElement.scrollWidth, view: window.innerWidth,
                     height: document.documentElement.scrollHeight,
                     sections: [...document.querySelectorAll('h2')].map((h) => h.textContent) };
        })()`,
    });
    const v = result.value;
    console.log(`page: ${v.figures} figures, ${v.pictures} pictures, sections: ${v.sections.join(' | ')}`);
    check('the page has figures', v.figures > 0 && v.svgs > 0, `${v.figures} figures`);
    check('every figure is laid out with a size', v.empty.length === 0, v.empty.join('; '));
    check('every embedded picture decodes', v.broken.length === 0, v.broken.join('; '));
    check('no horizontal scrolling at 1280 px', v.scroll <= v.view, `${v.scroll} > ${v.view}`);
    const external = fetched.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'));
    check('nothing fetched from a network', external.length === 0, external.join(' '));

    const full = await s('Page.captureScreenshot', {
        format: 'png', captureBeyondViewport: true,
        clip: { x: 0, y: 0, width: 1280, height: Math.min(v.height, 16000), scale: 1 },
    });
    fs.writeFileSync(shot, Buffer.from(full.data, 'base64'));
    check('a screenshot', fs.statSync(shot).size > 1000);
    const printed = await s('Page.printToPDF', { printBackground: true });
    fs.writeFileSync(pdf, Buffer.from(printed.data, 'base64'));
    check('a printed PDF', fs.statSync(pdf).size > 1000);
    check('no console error, warning or exception', problems.length === 0, problems.join(' | '));
    const exited = new Promise((resolve) => browser.exitCode !== null ? resolve() : browser.on('exit', resolve));
    await send('Browser.close').catch(() => {});
    await exited;
}

const timer = setTimeout(() => {
    check('the page loads within 120 s', false, stderr.slice(-500));
    browser.kill();
    process.exit(1);
}, 120000);

main().then(() => {
    clearTimeout(timer);
    fs.rmSync(profile, { recursive: true, force: true });
    process.exit(failed ? 1 : 0);
}, (e) => {
    check('the DevTools session', false, `${e.message}; chromium said: ${stderr.slice(-500)}`);
    browser.kill();
    process.exit(1);
});
