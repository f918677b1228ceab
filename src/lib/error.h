/*
 * error.h - the one error convention of libsmig.
 *
 * Every fallible function returns int: 0 on success or a negative
 * SMIG_E* code. Results travel through out-parameters. smig_strerror()
 * turns a code into a short English phrase for logs and the CLI.
 *
 * The guard macros keep error paths uniform:
 *   SMIG_GUARD(call)          return the call's code if it failed
 *   SMIG_ENSURE(cond, code)   return code unless cond holds
 *   SMIG_GUARD_GOTO(call, rc, label)  store the code in rc, jump to cleanup
 */
#ifndef SMIG_ERROR_H
#define SMIG_ERROR_H

enum smig_err {
	SMIG_OK = 0,
	SMIG_EINVAL = -1,     /* invalid argument */
	SMIG_ENOMEM = -2,     /* out of memory */
	SMIG_ESHORT = -3,     /* input ends before the item it must hold */
	SMIG_ETOOBIG = -4,    /* a length exceeds its maximum */
	SMIG_EPROTO = -5,     /* protocol violation */
	SMIG_EVERSION = -6,   /* unsupported protocol version */
	SMIG_ETYPE = -7,      /* unknown message type */
	SMIG_ETRAILING = -8,  /* bytes left after a complete item */
	SMIG_EIO = -9,        /* system I/O error (see errno) */
	SMIG_ETLS = -10,      /* TLS failure */
	SMIG_EAUTH = -11,     /* peer authentication failed */
	SMIG_ECONFIG = -12,   /* invalid configuration */
	SMIG_ENOENT = -13,    /* no such item */
	SMIG_EPERM = -14,     /* insecure file permissions or not permitted */
	SMIG_EAGAIN = -15,    /* operation would block; retry */
	SMIG_ECLOSED = -16,   /* peer closed the connection */
	SMIG_ETIMEDOUT = -17, /* timed out */
	SMIG_ECRYPTO = -18,   /* cryptographic operation failed */
	SMIG_EDENIED = -19,   /* denied by policy */
	SMIG_EEXIST = -20,    /* item already exists */
	SMIG_EUNREACH = -21,  /* peer unreachable */
	SMIG_EBUSY = -22,     /* resource busy */
	SMIG_ECAPACITY = -23, /* the host has not the memory or vCPUs free */
	SMIG_EFULL = -24,     /* as many incoming migrations as it takes are under way: try later */
	SMIG_ERR_MIN = -24,
};

/* Number of elements of a true array. */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A static string for code (never NULL). */
const char *smig_strerror(int code);

#define SMIG_GUARD(x)                                                          \
	do {                                                                   \
		int smig_rc_ = (x);                                            \
		if (smig_rc_ < 0)                                              \
			return smig_rc_;                                       \
	} while (0)

#define SMIG_ENSURE(cond, err)                                                 \
	do {                                                                   \
		if (!(cond))                                                   \
			return (err);                                          \
	} while (0)

#define SMIG_GUARD_GOTO(x, rc, label)                                          \
	do {                                                                   \
		(rc) = (x);                                                    \
		if ((rc) < 0)                                                  \
			goto label;                                            \
	} while (0)

#define SMIG_ENSURE_GOTO(cond, err, rc, label)                                 \
	do {                                                                   \
		if (!(cond)) {                                                 \
			(rc) = (err);                                          \
			goto label;                                            \
		}                                                              \
	} while (0)

#endif
