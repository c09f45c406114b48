// libcurl (Debian's libcurl4-openssl-dev, TLS by OpenSSL) for Swift.
// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call, so each
// argument type gets a non-variadic wrapper here.
#include <curl/curl.h>

typedef size_t (*atrium_curl_io_callback)(char *buffer, size_t size, size_t count, void *context);

static inline CURLcode atrium_curl_set_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode atrium_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode atrium_curl_set_pointer(CURL *curl, CURLoption option, void *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode atrium_curl_set_list(CURL *curl, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode atrium_curl_set_callback(CURL *curl, CURLoption option, atrium_curl_io_callback value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode atrium_curl_get_long(CURL *curl, CURLINFO info, long *value) {
    return curl_easy_getinfo(curl, info, value);
}

typedef int (*atrium_curl_progress_callback)(void *context, curl_off_t download_total, curl_off_t downloaded, curl_off_t upload_total, curl_off_t uploaded);

static inline CURLcode atrium_curl_set_progress(CURL *curl, atrium_curl_progress_callback value) {
    return curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, value);
}
