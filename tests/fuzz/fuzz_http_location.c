/*
 * libFuzzer target for http_location_resolve (redirect targets come from
 * upstream servers: anyone's input). The input is "BASE\nLOCATION". Beyond
 * "does not crash", with abort():
 *
 *  - the Location is read from the end of a heap block of exactly its
 *    length, so a read past n is an AddressSanitizer report;
 *  - out is always NUL-terminated within outlen, host within hostlen;
 *  - on success: out is an absolute http(s) URL whose scheme is *https,
 *    the port is not 0, the host is an IP literal or a name that
 *    sni_name_normalize() leaves unchanged;
 *  - resolving out again (against any base) gives the same URL, scheme,
 *    host and port: what the line says is what the policy decided on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "sni/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char base[512], out[1024], host[SNI_NAME_MAX + 1], norm[SNI_NAME_MAX + 1];
	char out2[1024], host2[SNI_NAME_MAX + 1];
	size_t blen, n;
	char *loc;
	int https, https2, rc;
	uint16_t port, port2;

	if (nl == NULL)
		return 0;
	blen = (size_t)(nl - data);
	if (blen >= sizeof(base) || memchr(data, '\0', blen) != NULL)
		return 0;
	memcpy(base, data, blen);
	base[blen] = '\0';
	n = size - blen - 1;
	loc = malloc(n ? n : 1);
	check(loc != NULL);
	memcpy(loc, nl + 1, n);

	memset(out, 0x5a, sizeof(out));
	memset(host, 0x5a, sizeof(host));
	rc = http_location_resolve(base, loc, n, out, sizeof(out), &https, host,
	    sizeof(host), &port);
	check(rc == 0 || rc == -1);
	check(memchr(out, '\0', sizeof(out)) != NULL);
	if (rc == 0) {
		check(memchr(host, '\0', sizeof(host)) != NULL && host[0] != '\0');
		check(port != 0 && (https == 0 || https == 1));
		check(strncasecmp(out, https ? "https://" : "http://",
		    https ? 8 : 7) == 0);
		if (strchr(host, ':') == NULL &&
		    strspn(host, "0123456789.") != strlen(host)) {
			check(sni_name_normalize((const uint8_t *)host, strlen(host),
			    norm) == 0 && strcmp(norm, host) == 0);
		}
		check(http_location_resolve("http://x.test/", out, strlen(out),
		    out2, sizeof(out2), &https2, host2, sizeof(host2), &port2) == 0);
		check(strcmp(out, out2) == 0 && strcmp(host, host2) == 0 &&
		    https == https2 && port == port2);
	}
	free(loc);
	return 0;
}
