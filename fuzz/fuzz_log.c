/*
 * fuzz_log.c - smig_log's escaping of text it did not write: whatever
 * bytes stand as a bare value, a quoted value and a free fragment, the line
 * holds only printable ASCII, keeps its fields (the value cannot end a
 * quoted string or start a field of its own), and a value unescapes back
 * to the bytes that went in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void format(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smig_log_format(out, outlen, fmt, ap);
	va_end(ap);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Reads a value at *p (bare, or quoted and escaped) into out; moves *p past
 * it. -1 when the text is not what the escaping writes.
 */
static long read_value(const char **p, char *out, size_t outlen)
{
	const char *s = *p;
	size_t n = 0;

	if (*s != '"') {
		n = strcspn(s, " ");
		if (n == 0 || n >= outlen)
			return -1;
		memcpy(out, s, n);
		*p = s + n;
		return (long)n;
	}
	for (s++; *s != '"'; s++) {
		char c = *s;

		if (c == '\0' || n + 1 >= outlen)
			return -1;
		if (c == '\\') {
			s++;
			switch (*s) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case '\\': c = '\\'; break;
			case '"': c = '"'; break;
			case 'x':
				if (hexval(s[1]) < 0 || hexval(s[2]) < 0)
					return -1;
				c = (char)(hexval(s[1]) * 16 + hexval(s[2]));
				s += 2;
				break;
			default:
				return -1;
			}
		}
		out[n++] = c;
	}
	*p = s + 1;
	return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[256], line[4096], back[512]; /* back holds "r " and all of in */
	const char *p;
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;
	long got;

	memcpy(in, data, n);
	in[n] = '\0';
	n = strlen(in); /* a C string ends at its first NUL */
	format(line, sizeof(line), "event=x a=%s b=\"r %s\" %s end=1", in, in, in);
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			abort();
	if (strncmp(line, "event=x a=", 10) != 0)
		abort();
	p = line + 10;
	got = read_value(&p, back, sizeof(back));
	if (got != (long)n || memcmp(back, in, n) != 0 || strncmp(p, " b=", 3) != 0)
		abort();
	p += 3;
	got = read_value(&p, back, sizeof(back));
	if (got != (long)n + 2 || memcmp(back, "r ", 2) != 0 || memcmp(back + 2, in, n) != 0)
		abort();
	/* the free fragment may hold spaces and '=', but the line still ends as written */
	n = strlen(line);
	if (n < 6 || strcmp(line + n - 6, " end=1") != 0)
		abort();
	return 0;
}
