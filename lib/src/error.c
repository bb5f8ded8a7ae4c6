#include "svc/error.h"

#include <stddef.h>

struct err_row {
    int code, status;
    const char *name, *type, *title;
};

static const struct err_row rows[] = {
#define SVC__ERR_ROW(name, value, status, type, title) {value, status, #name, type, title},
    SVC_ERRNO_MAP(SVC__ERR_ROW)
#undef SVC__ERR_ROW
};

static const struct err_row *find(int code)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].code == code)
            return &rows[i];
    return NULL;
}

int svc_err_status(int code)
{
    const struct err_row *r = find(code);

    return r != NULL ? r->status : 500;
}

const char *svc_err_name(int code)
{
    const struct err_row *r = find(code);

    return r != NULL ? r->name : "EUNKNOWN";
}

const char *svc_err_title(int code)
{
    const struct err_row *r = find(code);

    return r != NULL ? r->title : "Internal error";
}

const char *svc_err_type(int code)
{
    const struct err_row *r = find(code);

    return r != NULL ? r->type : "internal";
}
