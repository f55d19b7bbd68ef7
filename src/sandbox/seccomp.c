#include "sandbox/sandbox.h"

int sbx_seccomp_add(scmp_filter_ctx f, uint32_t action, const int *calls, size_t ncalls,
                    const struct sbx_rule *rules, size_t nrules)
{
    int rc = 0;
    for (size_t i = 0; i < ncalls && !rc; i++)
        rc = seccomp_rule_add(f, action, calls[i], 0);
    for (size_t i = 0; i < nrules && !rc; i++)
        rc = seccomp_rule_add_array(f, rules[i].action, rules[i].nr, rules[i].ncmp, rules[i].cmp);
    return rc;
}
