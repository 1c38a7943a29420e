/* tp-lock.c — output lock files (tp-lock.h): PATH.lock created with O_EXCL
 * holds the holder's pid in decimal; kill(pid, 0) tells a live holder from a
 * stale lock. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "tp-lock.h"

struct _TpLock {
    char *path; /* the lock file */
};

/* Creates the lock file holding our pid with O_EXCL: TRUE, or FALSE with
 * errno set. A process killed between the open and the write leaves an
 * empty lock; create_lock() avoids that where the file system links. */
static gboolean
create_lock_excl(const char *lock_path, const char *text, int len)
{
    int fd = g_open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    gboolean ok;

    if (fd < 0)
        return FALSE;
    ok = write(fd, text, (size_t)len) == len;
    close(fd);
    if (!ok) {
        int saved = errno;
        g_unlink(lock_path);
        errno = saved;
    }
    return ok;
}

/* Creates the lock file holding our pid: TRUE, or FALSE with errno set
 * (EEXIST: it exists). The pid is written to a temporary file first, which
 * link(2) then puts at lock_path, failing if it exists; so the lock appears
 * with its pid or not at all, whenever the process is killed (a kill before
 * the link leaves the temporary file, which blocks nothing). */
static gboolean
create_lock(const char *lock_path)
{
    char text[32];
    int len = g_snprintf(text, sizeof text, "%ld\n", (long)getpid());
    g_autofree char *tmp = g_strconcat(lock_path, ".XXXXXX", NULL);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
    gboolean written, linked;
    int saved;

    if (fd < 0)
        return create_lock_excl(lock_path, text, len);
    written = write(fd, text, (size_t)len) == len;
    close(fd);
    linked = written && link(tmp, lock_path) == 0;
    saved = errno;
    g_unlink(tmp);
    errno = saved;
    if (!linked && written && errno != EEXIST) /* a file system without hard links */
        return create_lock_excl(lock_path, text, len);
    return linked;
}

TpLock *
tp_lock_acquire(const char *path, GError **error)
{
    g_autofree char *lock_path = NULL;

    g_return_val_if_fail(path != NULL, NULL);

    lock_path = g_strconcat(path, ".lock", NULL);
    for (int attempt = 0; attempt < 2; attempt++) {
        g_autofree char *text = NULL;
        gint64 pid = 0;

        if (create_lock(lock_path)) {
            TpLock *lock = g_new0(TpLock, 1);
            lock->path = g_steal_pointer(&lock_path);
            return lock;
        }
        if (errno != EEXIST)
            break;
        /* A lock without a pid (an O_EXCL holder still writing it) is live. */
        if (g_file_get_contents(lock_path, &text, NULL, NULL) &&
            g_ascii_string_to_signed(g_strstrip(text), 10, 1, G_MAXINT, &pid, NULL) &&
            pid != getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            g_message("%s: taking over the lock of process %" G_GINT64_FORMAT
                      ", which is gone",
                      lock_path, pid);
            g_unlink(lock_path);
            continue;
        }
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                    "%s is in use by process %s (lock file %s); wait for it to finish, or "
                    "choose another output",
                    path, pid > 0 ? g_strstrip(text) : "(unknown)", lock_path);
        return NULL;
    }
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot create %s: %s",
                lock_path, g_strerror(errno));
    return NULL;
}

void
tp_lock_release(TpLock *lock)
{
    if (lock == NULL)
        return;
    g_unlink(lock->path);
    g_free(lock->path);
    g_free(lock);
}
