/*
 * error.c - names for the SMIG_E* codes of error.h.
 */
#include "error.h"

const char *smig_strerror(int code)
{
	switch (code) {
	case SMIG_OK: return "success";
	case SMIG_EINVAL: return "invalid argument";
	case SMIG_ENOMEM: return "out of memory";
	case SMIG_ESHORT: return "input truncated";
	case SMIG_ETOOBIG: return "length exceeds maximum";
	case SMIG_EPROTO: return "protocol violation";
	case SMIG_EVERSION: return "unsupported protocol version";
	case SMIG_ETYPE: return "unknown message type";
	case SMIG_ETRAILING: return "trailing bytes";
	case SMIG_EIO: return "I/O error";
	case SMIG_ETLS: return "TLS failure";
	case SMIG_EAUTH: return "peer authentication failed";
	case SMIG_ECONFIG: return "invalid configuration";
	case SMIG_ENOENT: return "not found";
	case SMIG_EPERM: return "not permitted";
	case SMIG_EAGAIN: return "would block";
	case SMIG_ECLOSED: return "connection closed";
	case SMIG_ETIMEDOUT: return "timed out";
	case SMIG_ECRYPTO: return "cryptographic failure";
	case SMIG_EDENIED: return "denied by policy";
	case SMIG_EEXIST: return "already exists";
	case SMIG_EUNREACH: return "peer unreachable";
	case SMIG_EBUSY: return "busy";
	case SMIG_ECAPACITY: return "not enough capacity";
	case SMIG_EFULL: return "incoming migrations at their cap";
	}
	return "unknown error";
}
