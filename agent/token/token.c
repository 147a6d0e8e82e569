/* The token model's shared helpers; see token.h. */
#include "token/token.h"

#include "profile/profile.h"
#include "x509/cert.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void token_clear(struct token *t)
{
    for (size_t i = 0; i < t->n_certs; i++)
        free(t->certs[i].der);
    memset(t, 0, sizeof *t);
}

ukey_err token_pin_format(const struct token_pin *pin, const char *value)
{
    size_t n = value ? strlen(value) : 0;
    if (n < pin->min_len || n > pin->max_len)
        return UKEY_ERR_PIN_FORMAT;
    for (size_t i = 0; pin->digits_only && i < n; i++)
        if (value[i] < '0' || value[i] > '9')
            return UKEY_ERR_PIN_FORMAT;
    return UKEY_OK;
}

json_t *token_json(const struct token *t)
{
    json_t *certs = json_array(), *out;
    for (size_t i = 0; certs && i < t->n_certs; i++) {
        json_t *c = x509_cert_json(t->certs[i].der, t->certs[i].der_len);
        if (!c)
            c = json_pack("{s:s}", "error", "CERT_INVALID");
        if (c) {
            json_object_set_new(c, "id", json_string(t->certs[i].id));
            json_object_set_new(c, "slot", json_string(t->certs[i].slot));
            if (t->certs[i].container[0])
                json_object_set_new(c, "container", json_string(t->certs[i].container));
            json_object_set_new(c, "authentication", json_boolean(t->certs[i].auth));
            json_object_set_new(c, "pin_required", json_boolean(!t->certs[i].pin_free));
            profiles_annotate_cert(c, t->certs[i].der, t->certs[i].der_len, time(NULL));
        }
        json_array_append_new(certs, c);
    }
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:o, s:b, s:b, s:b, s:b, s:i, s:i, s:I}, "
                    "s:{s:o, s:b, s:b}, s:o}",
                    "id", t->id, "reader", t->reader, "type", t->driver->name, "label", t->label,
                    "serial", t->serial,
                    "pin",
                      "retries_left", t->pin.retries_left >= 0 ? json_integer(t->pin.retries_left) : json_null(),
                      "retries_low", t->pin.retries_low,
                      "blocked", t->pin.blocked,
                      "pin_pad", t->pin.pin_pad,
                      "digits_only", t->pin.digits_only,
                      "min_length", (int)t->pin.min_len,
                      "max_length", (int)t->pin.max_len,
                      "retry_after_ms", (json_int_t)t->pin.retry_after_ms,
                    "puk",
                      "retries_left",
                        t->pin.puk_retries_left >= 0 ? json_integer(t->pin.puk_retries_left) : json_null(),
                      "retries_low", t->pin.puk_retries_low,
                      "blocked", t->pin.puk_blocked,
                    "certificates", certs);
    return out;
}
