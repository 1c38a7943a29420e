/* test-op-table.c — every op class (engine/ops/, tp-op.h) is complete: the
 * table has a class for each TpOpType, named as tp_op_type_to_string() says,
 * and each class fills every member an op must have (shape check, forward,
 * backward, ONNX import, channel rule) and, where it has parameters, their
 * ONNX names and how pruning cuts them. Optional members (macs, export, cut)
 * are checked against what the class declares.
 *
 * The classes are internal to libtaskprune, so this program is linked with
 * the library's objects instead of the shared library. Forward, backward and
 * MACs are checked numerically per op by test-ops (its table must hold a
 * case for every op: test_cases there), import and export by test-onnx and
 * test-onnx-conformance.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "tp-op.h"

/* One op type per iteration. */
START_TEST(test_members)
{
    const TpOpType op = (TpOpType)_i;
    const TpOpClass *klass = tp_op_class_get(op);
    int n_names = 0;

    ck_assert_msg(klass != NULL, "op %d has no class", _i);
    ck_assert_ptr_null(tp_op_class_get(TP_N_OPS));
    ck_assert_msg(klass->name != NULL && g_str_equal(klass->name, tp_op_type_to_string(op)),
                  "op %d: class name '%s', tp_op_type_to_string() '%s'", _i, klass->name,
                  tp_op_type_to_string(op));
    ck_assert_msg(klass->n_inputs >= 1 && klass->n_inputs <= TP_NODE_MAX_INPUTS,
                  "%s: n_inputs %d", klass->name, klass->n_inputs);
    ck_assert_msg(klass->check != NULL, "%s: no check()", klass->name);
    ck_assert_msg(klass->forward != NULL, "%s: no forward()", klass->name);
    ck_assert_msg(klass->backward != NULL, "%s: no backward()", klass->name);
    ck_assert_msg(klass->import != NULL, "%s: no import()", klass->name);
    ck_assert_msg(klass->channels != NULL, "%s: no channel rule", klass->name);
    ck_assert_msg(klass->sign >= TP_OP_SIGN_ANY && klass->sign <= TP_OP_SIGN_INPUTS,
                  "%s: sign %d", klass->name, klass->sign);
    ck_assert_msg(klass->lrp_rule >= TP_OP_LRP_NONE && klass->lrp_rule <= TP_OP_LRP_DENSE,
                  "%s: LRP rule %d", klass->name, klass->lrp_rule);

    /* Parameter names: a prefix of the array, distinct. */
    while (n_names < TP_NODE_MAX_PARAMS && klass->param_names[n_names] != NULL)
        n_names++;
    for (int p = n_names; p < TP_NODE_MAX_PARAMS; p++)
        ck_assert_msg(klass->param_names[p] == NULL, "%s: parameter name %d after a gap",
                      klass->name, p);
    for (int p = 0; p < n_names; p++)
        for (int q = p + 1; q < n_names; q++)
            ck_assert_msg(!g_str_equal(klass->param_names[p], klass->param_names[q]),
                          "%s: parameters %d and %d are both '%s'", klass->name, p, q,
                          klass->param_names[p]);
    /* An op with parameters names them and says how pruning cuts them. */
    ck_assert_msg((n_names > 0) == (klass->cut != NULL),
                  "%s: %d parameter names but %s cut()", klass->name, n_names,
                  klass->cut != NULL ? "a" : "no");
    /* Counting MACs, or ranking relevance through weights, needs weights. */
    if (klass->macs != NULL || klass->lrp_rule == TP_OP_LRP_CONV ||
        klass->lrp_rule == TP_OP_LRP_DENSE)
        ck_assert_msg(n_names > 0, "%s: a weighted layer's members without parameters",
                      klass->name);
}
END_TEST

/* Every class's channel rule says something about a plain [4, 5, 6] input. */
START_TEST(test_channel_rules)
{
    const TpOpClass *klass = tp_op_class_get((TpOpType)_i);
    const TpShape input = {3, {4, 5, 6}};
    TpNode node = {.op = (TpOpType)_i, .name = "node"};
    TpChannelRule rule = {0};

    node.attrs.conv.groups = 1;
    klass->channels(&node, &input, &rule);
    ck_assert_msg(rule.kind == TP_CHANNELS_KEEP || rule.kind == TP_CHANNELS_JOIN ||
                      rule.kind == TP_CHANNELS_NEW,
                  "%s: channel kind %d", klass->name, rule.kind);
    ck_assert_msg(rule.block >= 0, "%s: block %d", klass->name, rule.block);
    ck_assert_msg(!rule.grouped || rule.kind == TP_CHANNELS_NEW,
                  "%s: grouped but not a producer", klass->name);
    ck_assert_msg(!rule.linear || rule.kind == TP_CHANNELS_NEW,
                  "%s: linear but not a producer", klass->name);
    ck_assert_msg(rule.kind != TP_CHANNELS_JOIN || klass->n_inputs > 1,
                  "%s: joins the channels of its one input", klass->name);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("op-table");
    TCase *tc = tcase_create("op-table");
    SRunner *runner;
    int failed;

    g_log_set_always_fatal(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL);
    tcase_add_loop_test(tc, test_members, 0, TP_N_OPS);
    tcase_add_loop_test(tc, test_channel_rules, 0, TP_N_OPS);
    suite_add_tcase(suite, tc);
    runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
