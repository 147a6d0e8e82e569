/*
 * The one error enum of the agent. Handlers and modules return it; only the
 * HTTP layer turns it into the JSON envelope
 *   {"error": {"code": "PIN_INCORRECT", "message": "…", ...}}
 * with err_http_status(), err_code() and the bilingual messages.
 *
 * Append-only, like curl's CURLcode: codes are a public contract listed in
 * docs/API.md; a new value needs a case in error.c (-Wswitch catches a
 * missing one) and a row in the docs (a unit test checks both).
 */
#ifndef UKEY_UTIL_ERROR_H
#define UKEY_UTIL_ERROR_H

typedef enum {
    UKEY_OK = 0,
    UKEY_ERR_INTERNAL,
    UKEY_ERR_OUT_OF_MEMORY,
    UKEY_ERR_NOT_FOUND,
    UKEY_ERR_METHOD_NOT_ALLOWED,
    UKEY_ERR_HOST_NOT_ALLOWED,
    UKEY_ERR_ORIGIN_NOT_ALLOWED,
    UKEY_ERR_BAD_REQUEST,
    UKEY_ERR_UNSUPPORTED_MEDIA_TYPE,
    UKEY_ERR_BODY_TOO_LARGE,
    UKEY_ERR_INVALID_JSON,
    UKEY_ERR_PCSC_UNAVAILABLE,
    UKEY_ERR_TOKEN_NOT_FOUND,
    UKEY_ERR_TOKEN_REMOVED,
    UKEY_ERR_TOKEN_BUSY,
    UKEY_ERR_TOKEN_NOT_SUPPORTED,
    UKEY_ERR_CARD_DATA_INVALID,
    UKEY_ERR_CARD_ERROR,
    UKEY_ERR_PIN_FORMAT,
    UKEY_ERR_PIN_INCORRECT,
    UKEY_ERR_PIN_LAST_ATTEMPT,
    UKEY_ERR_PIN_BLOCKED,
    UKEY_ERR_PUK_INCORRECT,
    UKEY_ERR_PUK_BLOCKED,
    UKEY_ERR_CHALLENGE_INVALID,
    UKEY_ERR_CERT_NOT_FOUND,
    UKEY_ERR_PIN_REQUIRED,
    UKEY_ERR_ORIGIN_REQUIRED,
    UKEY_ERR_CERT_INVALID,
    UKEY_ERR_AGENT_BUSY,
    UKEY_ERR_PIN_ENTRY_IN_WINDOW,
    UKEY_ERR_CONSENT_NOT_FOUND,
    UKEY_ERR_USER_CANCELLED,
    UKEY_ERR_CONSENT_TIMEOUT,
    UKEY_ERR_MODULE_FAILED,
    UKEY_ERR_PIN_PAD_TIMEOUT,
    UKEY_ERR_PIN_PAD_CANCELLED,
    UKEY_ERR_PUK_LAST_ATTEMPT,
    UKEY_ERR_PIN_TOO_SOON,
    UKEY_ERR_CONSENT_REPLACED,
    UKEY_ERR_ORIGIN_BUSY,
    UKEY_ERR_SIGN_NOT_ALLOWED,
    UKEY_ERR_DATA_INVALID,
    UKEY_ERR_ALGORITHM_MISMATCH,
    UKEY_ERR__COUNT /* keep last */
} ukey_err;

/* HTTP status for the error (200 for UKEY_OK). */
unsigned err_http_status(ukey_err e);
/* Stable UPPER_SNAKE code, e.g. "ORIGIN_NOT_ALLOWED". */
const char *err_code(ukey_err e);
/* What went wrong and what to do, in Simplified Chinese and in English. */
const char *err_message_zh(ukey_err e);
const char *err_message_en(ukey_err e);

#endif
