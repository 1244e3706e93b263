/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* /etc/virtcert/virtcert.conf (GKeyFile). Every field has a default, so a
 * missing file is a valid configuration. Durations accept "90", "90s", "15m",
 * "24h", "7d". */
typedef struct {
	char *path; /* file it came from, or NULL for defaults */

	/* [daemon] */
	char *state_dir;	     /* state-dir: database and CA keys */
	char *policy_dir;	     /* policy-dir */
	char *libvirt_uri;	     /* libvirt-uri */
	char *control_socket;	     /* control-socket */
	char *control_group;	     /* control-group: group allowed on the socket besides root */
	char *http_address;	     /* http-address host:port, "" disables */
	gboolean issue_all;	     /* issue-all: VMs without policy get the default policy */
	gint64 reconcile_interval_s; /* reconcile-interval */

	/* [ca] the URLs leaves carry (see vc_config_get_ca_url()); NULL: not
	 * set, derived from public-url; "": explicitly none */
	char *public_url;	   /* public-url: base URL relying parties reach us at */
	char *crl_url;		   /* crl-url, "{ca}" replaced by the CA id */
	char *ocsp_url;		   /* ocsp-url */
	char *ca_issuers_url;	   /* ca-issuers-url, "{ca}" replaced by the CA id */
	gint64 crl_validity_s;	   /* crl-validity: nextUpdate - thisUpdate */
	gint64 default_lifetime_s; /* default-lifetime of leaves */
	gint64 backdate_s;	   /* backdate: notBefore this far in the past */

	/* [ocsp]: the responder at /ocsp (docs/revocation.md) */
	gboolean ocsp_sign_with_ca;	  /* sign-with=ca|responder (default responder) */
	gint64 ocsp_validity_s;		  /* validity: nextUpdate - thisUpdate */
	gint64 ocsp_responder_lifetime_s; /* responder-lifetime: the delegated certificate's */

	/* [hook] */
	gint64 hook_timeout_ms;	 /* timeout for the hook's question to the daemon */
	gboolean hook_fail_open; /* allow when the daemon does not answer (default false) */

	/* [host] host trust; NULL means the file under STATE_DIR/host/ (see
	 * vc_config_get_host_path()) */
	char *host_cert; /* cert: this host's certificate (host.pem) */
	char *host_key;	 /* key: its private key (host.key) */
	char *host_ca;	 /* ca: trusted host CA bundle (hostca.pem) */
	char *host_crl;	 /* crl: the host CA's CRL (hostca.crl), used if present */
	char *host_fqdn; /* fqdn: this host's name for enrollment */
	/* crl-refresh: how often the daemon reads the host certificate and the
	 * host CA's CRL again (and at `reload`), revoking what relied on a host
	 * certificate that has become unusable */
	gint64 host_crl_refresh_s;
	char *host_crl_url; /* crl-url: where to fetch the host CA's CRL from, NULL: none */

	/* [peer]: the host-to-host API (mTLS with host certificates) */
	char *peer_address; /* address: listen host:port, "" disables */
	char *peer_url; /* url: how other hosts reach this one (https://FQDN:PORT), NULL: none */
	gint64 handover_grace_s; /* handover-grace: how long a migrated VM's claim may take */

	/* Connection limits, so that no client holds the descriptors the
	 * others need. The daemon lowers the caps to fit its descriptor limit.
	 * [http]: the plain listener's cap; the deadlines of a connection on
	 * the plain and the peer listener */
	gint64 http_max_connections;	/* max-connections */
	gint64 http_header_timeout_ms;	/* header-timeout: accept (or a request's first byte)
					   to the end of its headers */
	gint64 http_idle_timeout_ms;	/* idle-timeout: between requests on a kept-alive one */
	gint64 http_request_timeout_ms; /* request-timeout: headers to the response written */
	gint64 peer_max_connections;	/* [peer] max-connections */
	/* [daemon] the control socket */
	gint64 control_max_connections; /* control-max-connections */
	gint64 control_timeout_ms;	/* control-timeout: for a complete request */
	/* [guest] the time budget of one guest agent job (a delivery, a check
	 * of the guest's files), and of one agent command within it */
	gint64 guest_timeout_s;		/* timeout */
	gint64 guest_command_timeout_s; /* command-timeout */

	/* [placement]: placements signed by the VMs' owners
	 * (agent/ca/vc-placement-sig.h, docs/host-trust.md) */
	char *owner_ca;		 /* owner-ca: trusted owner CA bundle (PEM), NULL: none */
	char *owner_crl;	 /* owner-crl: the owner CAs' CRLs (PEM or DER), NULL: none */
	gboolean require_signed; /* require-signed: refuse VMs without a valid signed placement */
	/* require-tls: migrations only over TLS with the host certificates; the
	 * hook refuses incoming migrations while qemu-conf does not force it
	 * (vc_qemu_conf_check_tls(), policy/vc-qemu-conf.h) */
	gboolean require_tls;
	char *qemu_conf; /* qemu-conf: libvirt's qemu.conf (default /etc/libvirt/qemu.conf) */
} VcConfig;

VcConfig *vc_config_new_default(void);
/* Loads FILE; a missing file is an error only if REQUIRED. Unknown keys are
 * errors naming group, key and file. */
VcConfig *vc_config_load(const char *path, gboolean required, GError **error);
void vc_config_free(VcConfig *config);
/* Overrides the state directory (virtcert --state-dir). */
void vc_config_set_state_dir(VcConfig *config, const char *state_dir);

/* The configured path of a [host] file ("cert", "key", "ca", "crl"), or
 * STATE_DIR/host/ + host.pem, host.key, hostca.pem, hostca.crl. */
char *vc_config_get_host_path(const VcConfig *config, const char *which);

/* The URLs a leaf carries (RFC 5280 4.2.1.13 and 4.2.2.1). */
typedef enum {
	VC_CA_URL_CRL,	      /* CRL distribution point: <public-url>/crl/<ca-id>.crl */
	VC_CA_URL_OCSP,	      /* OCSP responder: <public-url>/ocsp */
	VC_CA_URL_CA_ISSUERS, /* AIA caIssuers, the intermediate: <public-url>/ca/<ca-id>.crt */
} VcCaUrlKind;

/* The URL of KIND for the CA CA_ID: the per-endpoint key if it is set
 * ("{ca}" replaced by CA_ID; "" means none), else derived from
 * [ca] public-url, else NULL. Never a default: with nothing configured a
 * leaf carries no URL, and a loopback URL only when the administrator
 * wrote it. */
char *vc_config_get_ca_url(const VcConfig *config, VcCaUrlKind kind, const char *ca_id);

/* "24h" -> 86400. Fails with VC_ERROR_INVALID_DATA. */
gboolean vc_duration_parse(const char *s, gint64 *ret_seconds, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcConfig, vc_config_free)

G_END_DECLS
