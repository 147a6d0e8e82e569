/* The error table: HTTP status, stable code and bilingual message per ukey_err. */
#include "util/error.h"

struct err_info {
    unsigned status;
    const char *code;
    const char *zh;
    const char *en;
};

static struct err_info err_lookup(ukey_err e)
{
    switch (e) {
    case UKEY_OK:
        return (struct err_info){200, "OK", "成功。", "Success."};
    case UKEY_ERR_INTERNAL:
        return (struct err_info){500, "INTERNAL_ERROR",
            "助手程序内部错误。请重试；如仍失败，请运行“ukey-agent doctor”并把报告发给技术支持。",
            "Internal error in the agent. Try again; if it persists, run \"ukey-agent doctor\" and send the report to support."};
    case UKEY_ERR_OUT_OF_MEMORY:
        return (struct err_info){503, "OUT_OF_MEMORY",
            "助手程序内存不足。请关闭一些程序后重试。",
            "The agent ran out of memory. Close some programs and try again."};
    case UKEY_ERR_NOT_FOUND:
        return (struct err_info){404, "NOT_FOUND",
            "请求的地址不存在。请检查接口路径（见 docs/API.md）。",
            "No such resource. Check the API path (see docs/API.md)."};
    case UKEY_ERR_METHOD_NOT_ALLOWED:
        return (struct err_info){405, "METHOD_NOT_ALLOWED",
            "该地址不支持此请求方法。",
            "This resource does not support the request method."};
    case UKEY_ERR_HOST_NOT_ALLOWED:
        return (struct err_info){421, "HOST_NOT_ALLOWED",
            "请求的主机名不是本机助手的地址，已拒绝（防止 DNS 重绑定攻击）。请使用 https://127.0.0.1:端口 访问。",
            "The Host header does not name this agent, so the request was refused (DNS rebinding protection). Use https://127.0.0.1:PORT."};
    case UKEY_ERR_ORIGIN_NOT_ALLOWED:
        return (struct err_info){403, "ORIGIN_NOT_ALLOWED",
            "该网站未被授权调用本机证书助手。如果这是您单位的正式门户网站，请联系管理员把它加入允许列表。",
            "This website is not allowed to use the certificate agent. If it is your organisation's portal, ask the administrator to add it to the allowed origins."};
    case UKEY_ERR_BAD_REQUEST:
        return (struct err_info){400, "INVALID_REQUEST",
            "请求格式不正确。",
            "The request is malformed."};
    case UKEY_ERR_UNSUPPORTED_MEDIA_TYPE:
        return (struct err_info){415, "UNSUPPORTED_MEDIA_TYPE",
            "请求内容类型必须是 application/json。",
            "The request body must be sent as Content-Type: application/json."};
    case UKEY_ERR_BODY_TOO_LARGE:
        return (struct err_info){413, "BODY_TOO_LARGE",
            "请求内容过大，已拒绝。",
            "The request body is too large."};
    case UKEY_ERR_INVALID_JSON:
        return (struct err_info){400, "INVALID_JSON",
            "请求内容不是有效的 JSON 对象。",
            "The request body is not a valid JSON object."};
    case UKEY_ERR__COUNT:
        break;
    }
    return (struct err_info){500, "INTERNAL_ERROR", "未知错误。", "Unknown error."};
}

unsigned err_http_status(ukey_err e) { return err_lookup(e).status; }
const char *err_code(ukey_err e) { return err_lookup(e).code; }
const char *err_message_zh(ukey_err e) { return err_lookup(e).zh; }
const char *err_message_en(ukey_err e) { return err_lookup(e).en; }
