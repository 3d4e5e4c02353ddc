/*
 * dns/addr.c: numeric address text in and out, and the status and
 * family names.
 *
 * The status strings double as the daemon's log reasons (DESIGN §6), so
 * they are spelled exactly as the reason vocabulary spells them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"

const char *
dns_status_str(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "dns_nxdomain";
	case DNS_FAILURE:
		return "dns_failure";
	case DNS_TIMEOUT:
		return "dns_timeout";
	}
	return "dns_failure";
}

static const char *const dns_family_names[] = {
	[DNS_FAMILY_PREFER_V4] = "prefer_v4",
	[DNS_FAMILY_PREFER_V6] = "prefer_v6",
	[DNS_FAMILY_V4_ONLY] = "v4_only",
	[DNS_FAMILY_V6_ONLY] = "v6_only",
};

const char *
dns_family_str(enum dns_family f)
{
	if ((size_t)f >= sizeof(dns_family_names) / sizeof(dns_family_names[0]))
		return "prefer_v4";
	return dns_family_names[f];
}

int
dns_family_parse(const char *text, enum dns_family *out)
{
	size_t i;

	if (text == NULL || out == NULL)
		return -1;
	for (i = 0; i < sizeof(dns_family_names) / sizeof(dns_family_names[0]); i++) {
		if (strcmp(text, dns_family_names[i]) == 0) {
			*out = (enum dns_family)i;
			return 0;
		}
	}
	return -1;
}

void
dns_addr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL)
			return;
		port = ntohs(sin->sin_port);
		if (port != 0)
			snprintf(out, outlen, "%s:%u", ip, port);
		else
			snprintf(out, outlen, "%s", ip);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)) == NULL)
			return;
		port = ntohs(sin6->sin6_port);
		/* Brackets only with a port: a bare v6 address is unambiguous. */
		if (port != 0)
			snprintf(out, outlen, "[%s]:%u", ip, port);
		else
			snprintf(out, outlen, "%s", ip);
	}
}

/* Decimal 1..65535, digits only: no sign, no spaces, no hex. */
static int
parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	size_t i;

	if (s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int
dns_addr_parse(const char *text, uint16_t default_port,
    struct sockaddr_storage *out, socklen_t *outlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text = NULL;
	const char *colon, *end;
	uint16_t port = default_port;
	struct in_addr a4;
	struct in6_addr a6;
	size_t hlen;
	int bracketed = 0;

	if (text == NULL || out == NULL)
		goto fail;
	if (text[0] == '[') {
		end = strchr(text, ']');
		if (end == NULL)
			goto fail;
		hlen = (size_t)(end - (text + 1));
		if (hlen == 0 || hlen >= sizeof(host))
			goto fail;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (end[1] == ':')
			port_text = end + 2;
		else if (end[1] != '\0')
			goto fail;
		bracketed = 1;
	} else {
		colon = strchr(text, ':');
		/* More than one colon and no brackets: a bare IPv6 address. */
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hlen = (size_t)(colon - text);
			port_text = colon + 1;
		} else {
			hlen = strlen(text);
		}
		if (hlen == 0 || hlen >= sizeof(host))
			goto fail;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
	}
	if (port_text != NULL && parse_port(port_text, &port) < 0)
		goto fail;

	memset(out, 0, sizeof(*out));
	if (!bracketed && inet_pton(AF_INET, host, &a4) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		sin->sin_family = AF_INET;
		sin->sin_addr = a4;
		sin->sin_port = htons(port);
		if (outlen != NULL)
			*outlen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = a6;
		sin6->sin6_port = htons(port);
		if (outlen != NULL)
			*outlen = sizeof(*sin6);
		return 0;
	}
fail:
	return -1;
}

uint16_t
dns_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

const struct sockaddr *
dns_addr_unmap(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	struct sockaddr_in *in = (struct sockaddr_in *)out;

	if (sa->sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		return sa;
	memset(out, 0, sizeof(*out));
	in->sin_family = AF_INET;
	in->sin_port = in6->sin6_port;
	memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
	return (const struct sockaddr *)out;
}

int
dns_addr_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	return a->sa_family == AF_INET6 &&
	    memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}
