/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert placement sign|verify: the owner's side of signed placement, and
 * its check offline (agent/ca/vc-placement-sig.h). */
#include "vc-cli.h"

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-placement-sig.h"

static VcSignedPlacement *
vc_cli_placement_load(const char *path, char **ret_uuid, GError **error)
{
	gsize len = 0;
	g_autofree char *xml = vc_file_read(path, VC_DOMAIN_XML_MAX_SIZE + 1, &len, error);
	VcSignedPlacement *sp;

	if (xml == NULL)
		return NULL;
	sp = vc_domain_placement_parse_document(xml, (gssize)len, ret_uuid, error);
	if (sp == NULL)
		g_prefix_error(error, "%s: ", path);
	return sp;
}

/* "2027-01-01T00:00:00Z", or a duration from now ("90d", "12h"). */
static gboolean
vc_cli_placement_parse_not_after(const char *s, gint64 *ret, GError **error)
{
	gint64 d = 0;

	if (vc_signed_placement_parse_time(s, ret, NULL))
		return TRUE;
	if (vc_duration_parse(s, &d, NULL) && d > 0) {
		*ret = g_get_real_time() / G_USEC_PER_SEC + d;
		return TRUE;
	}
	g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
		    "--not-after \"%s\" is neither YYYY-MM-DDTHH:MM:SSZ nor a duration (\"90d\")",
		    s);
	return FALSE;
}

gboolean
vc_cli_placement_sign(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *key_path = NULL;
	g_autofree char *cert_path = NULL;
	g_autofree char *chain_path = NULL;
	g_autofree char *vm = NULL;
	g_autofree char *not_after_s = NULL;
	g_autofree char *out_path = NULL;
	g_autofree char *doc_uuid = NULL;
	g_autoptr(VcSignedPlacement) sp = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	g_autoptr(GPtrArray) extra = g_ptr_array_new();
	g_autoptr(GPtrArray) chain = NULL;
	g_autoptr(GBytes) canonical = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autofree char *xml = NULL;
	gint64 not_after = 0;
	const GOptionEntry entries[] = {
	    {"key", 0, 0, G_OPTION_ARG_FILENAME, &key_path, "The owner's private key (PEM)",
	     "FILE"},
	    {"cert", 0, 0, G_OPTION_ARG_FILENAME, &cert_path,
	     "The owner's certificate (PEM; intermediates may follow it)", "FILE"},
	    {"chain", 0, 0, G_OPTION_ARG_FILENAME, &chain_path,
	     "Intermediate owner CA certificates to carry along (PEM)", "FILE"},
	    {"vm", 0, 0, G_OPTION_ARG_STRING, &vm,
	     "The UUID of the VM the placement is for (default: a domain XML's own)", "UUID"},
	    {"not-after", 0, 0, G_OPTION_ARG_STRING, &not_after_s,
	     "Last moment the signature counts: YYYY-MM-DDTHH:MM:SSZ or a duration (90d)", "TIME"},
	    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out_path, "Write here instead of stdout", "FILE"},
	    {NULL}};
	static const char *args = "--key K --cert C --vm UUID [--not-after T] PLACEMENT.xml";

	if (!vc_cli_parse("placement sign", args, entries, &argc, &argv, error))
		return FALSE;
	if (key_path == NULL || cert_path == NULL || argc != 2) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "usage: virtcert placement sign %s",
			    args);
		return FALSE;
	}
	if (not_after_s != NULL &&
	    !vc_cli_placement_parse_not_after(not_after_s, &not_after, error))
		return FALSE;
	sp = vc_cli_placement_load(argv[1], &doc_uuid, error);
	if (sp == NULL)
		return FALSE;
	if (!sp->present) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s holds no <virtcert:placement> element to sign", argv[1]);
		return FALSE;
	}
	if (vm == NULL && doc_uuid == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "--vm UUID is required: a placement is signed for one VM");
		return FALSE;
	}
	if (vm != NULL && doc_uuid != NULL && g_ascii_strcasecmp(vm, doc_uuid) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "--vm %s is not the UUID of the domain in %s (%s)", vm, argv[1],
			    doc_uuid);
		return FALSE;
	}
	canonical = vc_signed_placement_canonical(sp, vm != NULL ? vm : doc_uuid, not_after, error);
	if (canonical == NULL) {
		g_prefix_error(error, "%s: ", argv[1]);
		return FALSE;
	}
	key = vc_key_load(key_path, error);
	certs = key != NULL ? vc_cert_load_pem_file(cert_path, error) : NULL;
	if (certs == NULL)
		return FALSE;
	for (guint i = 1; i < certs->len; i++)
		g_ptr_array_add(extra, g_ptr_array_index(certs, i));
	if (chain_path != NULL) {
		chain = vc_cert_load_pem_file(chain_path, error);
		if (chain == NULL)
			return FALSE;
		for (guint i = 0; i < chain->len; i++)
			g_ptr_array_add(extra, g_ptr_array_index(chain, i));
	}
	der = vc_placement_sig_sign(key, g_ptr_array_index(certs, 0), extra, canonical, error);
	if (der == NULL)
		return FALSE;
	xml = vc_signed_placement_to_xml(sp, vm != NULL ? vm : doc_uuid, not_after, der);
	if (xml == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_FAILED,
				    "cannot write the signed placement");
		return FALSE;
	}
	return vc_cli_write_output(out_path, xml, strlen(xml), 0644, error);
}

gboolean
vc_cli_placement_verify(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *owner_ca = NULL;
	g_autofree char *owner_crl = NULL;
	g_autofree char *vm = NULL;
	g_autofree char *doc_uuid = NULL;
	g_autofree char *signer = NULL;
	g_autoptr(VcSignedPlacement) sp = NULL;
	g_autoptr(VcOwnerTrust) trust = NULL;
	g_autoptr(GError) local = NULL;
	const char *ca_path, *crl_path, *uuid;
	gboolean valid;
	const GOptionEntry entries[] = {
	    {"owner-ca", 0, 0, G_OPTION_ARG_FILENAME, &owner_ca,
	     "Trusted owner CA bundle (default: [placement] owner-ca)", "FILE"},
	    {"owner-crl", 0, 0, G_OPTION_ARG_FILENAME, &owner_crl,
	     "The owner CAs' CRLs (default: [placement] owner-crl)", "FILE"},
	    {"vm", 0, 0, G_OPTION_ARG_STRING, &vm,
	     "The VM the placement must be bound to (default: a domain XML's own UUID)", "UUID"},
	    {NULL}};
	static const char *args = "[--owner-ca F] [--vm UUID] DOMAIN.xml|PLACEMENT.xml";

	if (!vc_cli_parse("placement verify", args, entries, &argc, &argv, error))
		return FALSE;
	if (argc != 2) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "usage: virtcert placement verify %s",
			    args);
		return FALSE;
	}
	/* --owner-ca stands alone (an owner checks without a host's
	 * configuration); else both come from the configuration */
	if (owner_ca == NULL && vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	ca_path = owner_ca != NULL ? owner_ca : cli->config->owner_ca;
	crl_path = owner_crl != NULL ? owner_crl : owner_ca != NULL ? NULL : cli->config->owner_crl;
	if (ca_path == NULL) {
		g_set_error_literal(
		    error, VC_ERROR, VC_ERROR_USAGE,
		    "no owner CA: give --owner-ca FILE or set [placement] owner-ca");
		return FALSE;
	}
	sp = vc_cli_placement_load(argv[1], &doc_uuid, error);
	if (sp == NULL)
		return FALSE;
	uuid = vm != NULL ? vm : doc_uuid;
	trust = vc_owner_trust_new(ca_path, crl_path);
	valid = vc_placement_sig_verify(trust, sp, uuid, 0, &signer, &local);
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "valid");
		json_builder_add_boolean_value(b, valid);
		json_builder_set_member_name(b, "reason");
		json_builder_add_string_value(b, valid ? "signature valid" : local->message);
		json_builder_set_member_name(b, "signer");
		json_builder_add_string_value(b, signer);
		json_builder_set_member_name(b, "vm");
		json_builder_add_string_value(b, sp->sig_vm);
		json_builder_set_member_name(b, "not_after");
		json_builder_add_string_value(b, sp->sig_not_after);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else if (valid) {
		g_print("placement signature valid: signed by \"%s\" for VM %s%s%s%s\n", signer,
			sp->sig_vm, sp->sig_not_after != NULL ? ", until " : "",
			sp->sig_not_after != NULL ? sp->sig_not_after : "",
			uuid == NULL ? " (not checked against a VM: give --vm)" : "");
	}
	if (!valid) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}
