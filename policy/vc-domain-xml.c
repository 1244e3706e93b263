/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-text.h"
#include "vc-xml-autoptr.h"

/* Older nova releases (before Train) write the 1.0 namespace with the same
 * elements; both are read. */
#define VC_NOVA_NS_1_0 "http://openstack.org/xmlns/libvirt/nova/1.0"

/* Parser options for hostile input: no network, no entity substitution
 * (XML_PARSE_NOENT is deliberately absent), no DTD loading or default
 * attributes, no lifting of libxml2's built-in limits (no XML_PARSE_HUGE),
 * and no error printing (errors are returned, library code never prints). */
#define VC_XML_PARSE_OPTIONS                                                                       \
	(XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

void
vc_domain_info_free(VcDomainInfo *info)
{
	if (info == NULL)
		return;
	g_free(info->name);
	g_free(info->uuid);
	if (info->metadata != NULL)
		g_hash_table_unref(info->metadata);
	g_free(info->issued_serial);
	g_free(info->issuer_peer);
	g_free(info->nova_instance);
	g_free(info->nova_project);
	g_free(info->nova_project_id);
	g_free(info->nova_user);
	g_free(info->nova_user_id);
	g_free(info->nova_flavor);
	vc_signed_placement_free(info->placement);
	g_free(info);
}

static gpointer
vc_domain_xml_init_once(gpointer data)
{
	xmlInitParser();
	return NULL;
}

/* The parser's own view of a DOCTYPE, not a scan of the text: a CDATA
 * section or a comment holding "<!DOCTYPE" is text libvirt accepts, and a
 * real declaration stops the parser before its internal subset (entity
 * declarations, billion laughs) is read. */
static void
vc_domain_xml_sax_stop_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id,
			   const xmlChar *system_id)
{
	xmlParserCtxt *ctxt = ctx;

	*(gboolean *)ctxt->_private = TRUE;
	xmlStopParser(ctxt);
}

static void
vc_domain_xml_sax_stop_entity(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
			      const xmlChar *system_id, xmlChar *content)
{
	xmlParserCtxt *ctxt = ctx;

	*(gboolean *)ctxt->_private = TRUE;
	xmlStopParser(ctxt);
}

/* Walks a virtcert element's tree: depth cap, value-length cap on every
 * attribute and text node (libxml2's own limits are in megabytes). The rest
 * of a domain XML is libvirt's and is read as libvirt accepts it. */
static gboolean
vc_domain_xml_check_tree(xmlNode *node, guint depth, gboolean siblings, GError **error)
{
	for (xmlNode *n = node; n != NULL; n = siblings ? n->next : NULL) {
		if (n->type == XML_DTD_NODE || n->type == XML_ENTITY_DECL ||
		    n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_NODE) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "domain XML line %d: entities are not allowed", n->line);
			return FALSE;
		}
		if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE ||
		    n->type == XML_COMMENT_NODE) {
			if (n->content != NULL &&
			    strlen((const char *)n->content) > VC_DOMAIN_XML_MAX_VALUE) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "domain XML line %d: text longer than %d octets",
					    n->line, VC_DOMAIN_XML_MAX_VALUE);
				return FALSE;
			}
			continue;
		}
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (depth + 1 > VC_DOMAIN_XML_MAX_DEPTH) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "domain XML line %d: nested deeper than %d elements", n->line,
				    VC_DOMAIN_XML_MAX_DEPTH);
			return FALSE;
		}
		for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
			for (xmlNode *t = a->children; t != NULL; t = t->next) {
				if (t->type != XML_TEXT_NODE) {
					g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
						    "domain XML line %d: attribute %s holds an "
						    "entity reference",
						    n->line, (const char *)a->name);
					return FALSE;
				}
				if (t->content != NULL &&
				    strlen((const char *)t->content) > VC_DOMAIN_XML_MAX_VALUE) {
					g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
						    "domain XML line %d: attribute %s is longer "
						    "than %d octets",
						    n->line, (const char *)a->name,
						    VC_DOMAIN_XML_MAX_VALUE);
					return FALSE;
				}
			}
		}
		if (!vc_domain_xml_check_tree(n->children, depth + 1, TRUE, error))
			return FALSE;
	}
	return TRUE;
}

/* Parses with the safe options and refuses any DTD, as the parser meets it
 * (so a billion-laughs document is never expanded) and after (belt and
 * braces). STRICT applies the caps of vc_domain_xml_check_tree() to the
 * whole document (a lone virtcert element); a domain XML gets them only on
 * its virtcert element. */
static xmlDoc *
vc_domain_xml_parse_safely(const char *xml, gssize len, gboolean strict, GError **error)
{
	static GOnce once = G_ONCE_INIT;
	g_autoptr(xmlParserCtxt) ctxt = NULL;
	g_autoptr(xmlDoc) doc = NULL;
	gboolean saw_dtd = FALSE;
	gsize n;

	g_once(&once, vc_domain_xml_init_once, NULL);
	if (xml == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, "no XML");
		return NULL;
	}
	n = len < 0 ? strlen(xml) : (gsize)len;
	if (n == 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, "empty XML");
		return NULL;
	}
	if (n > VC_DOMAIN_XML_MAX_SIZE) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "domain XML is %" G_GSIZE_FORMAT " octets, at most %d allowed", n,
			    VC_DOMAIN_XML_MAX_SIZE);
		return NULL;
	}
	if (memchr(xml, '\0', n) != NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "domain XML contains a NUL byte");
		return NULL;
	}
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL || ctxt->sax == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_FAILED, "out of memory");
		return NULL;
	}
	ctxt->_private = &saw_dtd;
	ctxt->sax->internalSubset = vc_domain_xml_sax_stop_dtd;
	ctxt->sax->externalSubset = vc_domain_xml_sax_stop_dtd;
	ctxt->sax->entityDecl = vc_domain_xml_sax_stop_entity;
	/* libvirt writes UTF-8; forcing it rules out UTF-16 and EBCDIC tricks */
	doc = xmlCtxtReadMemory(ctxt, xml, (int)n, "domain.xml", "UTF-8", VC_XML_PARSE_OPTIONS);
	if (saw_dtd) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "domain XML with a DOCTYPE or ENTITY declaration is refused "
				    "(libvirt never writes one)");
		return NULL;
	}
	if (doc == NULL || !ctxt->wellFormed) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		g_autofree char *msg =
		    g_strdup(e != NULL && e->message != NULL ? e->message : "not well-formed");
		g_strchomp(msg);
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "domain XML line %d: %s",
			    e != NULL ? e->line : 0, msg);
		return NULL;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "domain XML with a DOCTYPE is refused");
		return NULL;
	}
	if (strict && !vc_domain_xml_check_tree(doc->children, 0, TRUE, error))
		return NULL;
	return g_steal_pointer(&doc);
}

static gboolean
vc_domain_xml_ns_is(const xmlNode *n, const char *href)
{
	return n->ns != NULL && n->ns->href != NULL && strcmp((const char *)n->ns->href, href) == 0;
}

static gboolean
vc_domain_xml_name_is(const xmlNode *n, const char *name)
{
	return strcmp((const char *)n->name, name) == 0;
}

static gboolean
vc_domain_xml_is_nova(const xmlNode *n)
{
	return vc_domain_xml_ns_is(n, VC_NOVA_NS) || vc_domain_xml_ns_is(n, VC_NOVA_NS_1_0);
}

/* Control characters, C1 included (XML 1.0 allows U+007F..U+009F and
 * &#9; &#10; &#13;). */
static gboolean
vc_domain_xml_has_control_chars(const char *s)
{
	for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
			return TRUE;
	}
	return FALSE;
}

/* Text content of N (all text children), checked and, if STRIP, trimmed. */
static char *
vc_domain_xml_node_text(const xmlNode *n, gboolean strip, GError **error)
{
	g_autoptr(GString) s = g_string_new(NULL);
	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
			g_string_append(s, (const char *)c->content);
		else if (c->type == XML_ELEMENT_NODE) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "line %d: <%s> must hold only text", n->line,
				    (const char *)n->name);
			return NULL;
		}
	}
	if (strip)
		g_strstrip(s->str);
	if (vc_domain_xml_has_control_chars(s->str)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "line %d: <%s> contains control characters", n->line,
			    (const char *)n->name);
		return NULL;
	}
	return g_strdup(s->str);
}

static char *
vc_domain_xml_attr_value(const xmlNode *n, const xmlAttr *a, GError **error)
{
	g_autofree char *v = (char *)xmlNodeListGetString(n->doc, a->children, 1);
	if (v == NULL)
		return g_strdup("");
	if (vc_domain_xml_has_control_chars(v)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "line %d: attribute %s of <%s> contains control characters", n->line,
			    (const char *)a->name, (const char *)n->name);
		return NULL;
	}
	return g_steal_pointer(&v);
}

/* The value of attribute NAME (no namespace), or NULL. */
static char *
vc_domain_xml_get_attr(const xmlNode *n, const char *name, GError **error)
{
	for (xmlAttr *a = n->properties; a != NULL; a = a->next)
		if (a->ns == NULL && strcmp((const char *)a->name, name) == 0)
			return vc_domain_xml_attr_value(n, a, error);
	return NULL;
}

/* Every attribute of N must be in ALLOWED (NULL-terminated). */
static gboolean
vc_domain_xml_check_attrs(const xmlNode *n, const char *const *allowed, GError **error)
{
	for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
		gboolean ok = FALSE;
		/* foreign-namespace attributes belong to someone else */
		if (a->ns != NULL && strcmp((const char *)a->ns->href, VC_DOMAIN_NS) != 0)
			continue;
		for (gsize i = 0; allowed[i] != NULL; i++)
			if (strcmp((const char *)a->name, allowed[i]) == 0)
				ok = TRUE;
		if (!ok || a->ns != NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "line %d: unknown attribute \"%s\" on <virtcert:%s>", n->line,
				    (const char *)a->name, (const char *)n->name);
			return FALSE;
		}
	}
	return TRUE;
}

static void
vc_domain_xml_map_append(GHashTable *map, const char *key, const char *value)
{
	GStrv old = g_hash_table_lookup(map, key);
	guint n = old != NULL ? g_strv_length(old) : 0;
	GStrv v = g_new0(char *, n + 2);
	for (guint i = 0; i < n; i++)
		v[i] = g_strdup(old[i]);
	v[n] = g_strdup(value);
	g_hash_table_insert(map, g_strdup(key), v);
}

/* Sets a single-valued key; a second occurrence is an error. */
static gboolean
vc_domain_xml_map_set_once(GHashTable *map, const xmlNode *n, const char *key, const char *value,
			   GError **error)
{
	GStrv v;
	if (g_hash_table_contains(map, key)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "line %d: <virtcert:%s> sets %s a second time", n->line,
			    (const char *)n->name, key);
		return FALSE;
	}
	v = g_new0(char *, 2);
	v[0] = g_strdup(value);
	g_hash_table_insert(map, g_strdup(key), v);
	return TRUE;
}

/* Sets KEY from attribute ATTR of N when present. */
static gboolean
vc_domain_xml_map_set_attr(GHashTable *map, const xmlNode *n, const char *attr, const char *key,
			   GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree char *v = vc_domain_xml_get_attr(n, attr, &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (v == NULL)
		return TRUE;
	return vc_domain_xml_map_set_once(map, n, key, v, error);
}

static gboolean
vc_domain_xml_only_whitespace_text(const xmlNode *n, GError **error)
{
	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			for (const xmlChar *p = c->content; p != NULL && *p != '\0'; p++) {
				if (!g_ascii_isspace(*p)) {
					g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
						    "line %d: unexpected text in <virtcert:%s>",
						    n->line, (const char *)n->name);
					return FALSE;
				}
			}
		}
	}
	return TRUE;
}

/* Child elements that are ours: virtcert namespace or none at all (a missing
 * prefix is a mistake we report). Foreign namespaces are skipped. */
static gboolean
vc_domain_xml_is_ours(const xmlNode *c)
{
	return c->type == XML_ELEMENT_NODE &&
	       (c->ns == NULL || vc_domain_xml_ns_is(c, VC_DOMAIN_NS));
}

static gboolean
vc_domain_xml_unknown_element(const xmlNode *c, const char *parent, GError **error)
{
	g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
		    "line %d: unknown element <%s%s> in <virtcert:%s>", c->line,
		    c->ns == NULL ? "" : "virtcert:", (const char *)c->name, parent);
	return FALSE;
}

/* The text of <virtcert:signature>, line breaks and all. */
static char *
vc_domain_xml_signature_text(const xmlNode *n, GError **error)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			g_string_append(s, (const char *)c->content);
		} else if (c->type == XML_ELEMENT_NODE) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "line %d: <%s> must hold only text", n->line,
				    (const char *)n->name);
			return NULL;
		}
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* <virtcert:signature vm="UUID" not-after="T">BASE64</virtcert:signature> */
static gboolean
vc_domain_xml_parse_signature(const xmlNode *c, VcSignedPlacement *sp, GError **error)
{
	static const char *const sig_attrs[] = {"vm", "not-after", NULL};
	g_autoptr(GError) local = NULL;
	g_autofree char *vm = NULL;
	g_autofree char *not_after = NULL;
	g_autofree char *text = NULL;

	if (!vc_domain_xml_check_attrs(c, sig_attrs, error))
		return FALSE;
	vm = vc_domain_xml_get_attr(c, "vm", &local);
	if (local == NULL)
		not_after = vc_domain_xml_get_attr(c, "not-after", &local);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	/* base64 may be wrapped over lines: white space inside is allowed
	 * here, and every other character is checked by the setter */
	text = vc_domain_xml_signature_text(c, error);
	if (text == NULL)
		return FALSE;
	if (!vc_signed_placement_set_signature(sp, vm, not_after, text, &local)) {
		g_propagate_prefixed_error(error, g_steal_pointer(&local), "line %d: ", c->line);
		return FALSE;
	}
	return TRUE;
}

/* Reads <virtcert:placement> into MAP (policy keys) and, when SP is not
 * NULL, the rules as written and their signature into SP. */
static gboolean
vc_domain_xml_parse_placement(const xmlNode *pl, GHashTable *map, VcSignedPlacement *sp,
			      GError **error)
{
	static const char *const attrs[] = {"check-on-start", NULL};
	static const char *const no_attrs[] = {NULL};
	static const char *const require_attrs[] = {"attr", NULL};
	g_autoptr(VcSignedPlacement) own = vc_signed_placement_new();
	gboolean seen_sig = FALSE;

	if (sp == NULL)
		sp = own;
	sp->present = TRUE;
	if (!vc_domain_xml_check_attrs(pl, attrs, error) ||
	    !vc_domain_xml_only_whitespace_text(pl, error))
		return FALSE;
	if (!vc_domain_xml_map_set_attr(map, pl, "check-on-start", "check-on-start", error))
		return FALSE;
	{
		g_autoptr(GError) local = NULL;
		sp->check_on_start = vc_domain_xml_get_attr(pl, "check-on-start", &local);
		if (local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
	}
	for (xmlNode *c = pl->children; c != NULL; c = c->next) {
		g_autofree char *text = NULL;
		if (!vc_domain_xml_is_ours(c))
			continue;
		if (c->ns == NULL)
			return vc_domain_xml_unknown_element(c, "placement", error);
		if (vc_domain_xml_name_is(c, "trust-ca")) {
			if (!vc_domain_xml_check_attrs(c, no_attrs, error))
				return FALSE;
			text = vc_domain_xml_node_text(c, TRUE, error);
			if (text == NULL)
				return FALSE;
			vc_domain_xml_map_append(map, "trust-host-ca", text);
			g_ptr_array_add(sp->trust_cas, g_strdup(text));
		} else if (vc_domain_xml_name_is(c, "require")) {
			g_autoptr(GError) local = NULL;
			g_autofree char *attr = NULL;
			g_autofree char *rule = NULL;
			if (!vc_domain_xml_check_attrs(c, require_attrs, error))
				return FALSE;
			attr = vc_domain_xml_get_attr(c, "attr", &local);
			if (local != NULL) {
				g_propagate_error(error, g_steal_pointer(&local));
				return FALSE;
			}
			if (attr == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "line %d: <virtcert:require> needs attr=", c->line);
				return FALSE;
			}
			text = vc_domain_xml_node_text(c, TRUE, error);
			if (text == NULL)
				return FALSE;
			rule = g_strdup_printf("%s=%s", attr, text);
			vc_domain_xml_map_append(map, "require", rule);
			g_ptr_array_add(sp->requires, g_strdup(rule));
		} else if (vc_domain_xml_name_is(c, "signature")) {
			if (seen_sig) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "line %d: <virtcert:signature> appears twice", c->line);
				return FALSE;
			}
			seen_sig = TRUE;
			if (!vc_domain_xml_parse_signature(c, sp, error))
				return FALSE;
		} else {
			return vc_domain_xml_unknown_element(c, "placement", error);
		}
	}
	return TRUE;
}

/* Reads <virtcert:vm> into MAP (policy keys) and the daemon's facts. */
static gboolean
vc_domain_xml_parse_vm(const xmlNode *vm, GHashTable *map, VcSignedPlacement **ret_placement,
		       char **ret_serial, char **ret_peer, GError **error)
{
	static const char *const no_attrs[] = {NULL};
	static const char *const key_attrs[] = {"type", "mode", NULL};
	static const char *const issue_attrs[] = {"on", NULL};
	static const char *const stop_attrs[] = {"action", NULL};
	static const char *const delivery_attrs[] = {"cert",  "chain",	"key",
						     "owner", "reload", NULL};
	static const char *const issued_attrs[] = {"serial", "peer", NULL};
	static const char *const single[] = {"key",	 "lifetime",  "issue", "stop",
					     "delivery", "placement", "issued"};
	g_autofree char *serial = NULL;
	g_autofree char *peer = NULL;
	g_autoptr(VcSignedPlacement) placement = NULL;
	guint seen = 0;

	if (!vc_domain_xml_check_attrs(vm, no_attrs, error) ||
	    !vc_domain_xml_only_whitespace_text(vm, error))
		return FALSE;
	for (xmlNode *c = vm->children; c != NULL; c = c->next) {
		if (!vc_domain_xml_is_ours(c))
			continue;
		if (c->ns == NULL)
			return vc_domain_xml_unknown_element(c, "vm", error);
		/* everything but <name> appears at most once */
		for (guint i = 0; i < G_N_ELEMENTS(single); i++) {
			if (!vc_domain_xml_name_is(c, single[i]))
				continue;
			if (seen & (1u << i)) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "line %d: <virtcert:%s> appears twice", c->line,
					    single[i]);
				return FALSE;
			}
			seen |= 1u << i;
		}
		if (vc_domain_xml_name_is(c, "name")) {
			g_autofree char *text = NULL;
			if (!vc_domain_xml_check_attrs(c, no_attrs, error))
				return FALSE;
			text = vc_domain_xml_node_text(c, TRUE, error);
			if (text == NULL)
				return FALSE;
			vc_domain_xml_map_append(map, "names", text);
		} else if (vc_domain_xml_name_is(c, "key")) {
			if (!vc_domain_xml_check_attrs(c, key_attrs, error) ||
			    !vc_domain_xml_map_set_attr(map, c, "type", "key", error) ||
			    !vc_domain_xml_map_set_attr(map, c, "mode", "key-mode", error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "lifetime")) {
			g_autofree char *text = NULL;
			if (!vc_domain_xml_check_attrs(c, no_attrs, error))
				return FALSE;
			text = vc_domain_xml_node_text(c, TRUE, error);
			if (text == NULL ||
			    !vc_domain_xml_map_set_once(map, c, "lifetime", text, error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "issue")) {
			if (!vc_domain_xml_check_attrs(c, issue_attrs, error) ||
			    !vc_domain_xml_map_set_attr(map, c, "on", "issue-on", error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "stop")) {
			if (!vc_domain_xml_check_attrs(c, stop_attrs, error) ||
			    !vc_domain_xml_map_set_attr(map, c, "action", "on-stop", error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "delivery")) {
			if (!vc_domain_xml_check_attrs(c, delivery_attrs, error) ||
			    !vc_domain_xml_map_set_attr(map, c, "cert", "cert-path", error) ||
			    !vc_domain_xml_map_set_attr(map, c, "chain", "chain-path", error) ||
			    !vc_domain_xml_map_set_attr(map, c, "key", "key-path", error) ||
			    !vc_domain_xml_map_set_attr(map, c, "owner", "owner", error) ||
			    !vc_domain_xml_map_set_attr(map, c, "reload", "reload", error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "placement")) {
			placement = vc_signed_placement_new();
			if (!vc_domain_xml_parse_placement(c, map, placement, error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "issued")) {
			g_autoptr(GError) local = NULL;
			if (!vc_domain_xml_check_attrs(c, issued_attrs, error))
				return FALSE;
			serial = vc_domain_xml_get_attr(c, "serial", &local);
			if (local == NULL)
				peer = vc_domain_xml_get_attr(c, "peer", &local);
			if (local != NULL) {
				g_propagate_error(error, g_steal_pointer(&local));
				return FALSE;
			}
		} else {
			return vc_domain_xml_unknown_element(c, "vm", error);
		}
	}
	if (ret_serial != NULL)
		*ret_serial = g_steal_pointer(&serial);
	if (ret_peer != NULL)
		*ret_peer = g_steal_pointer(&peer);
	if (ret_placement != NULL)
		*ret_placement = g_steal_pointer(&placement);
	return TRUE;
}

/* nova's metadata is read as nova (and libvirt) wrote it, not refused: a
 * value no DNS name or selector can use fails where it is used, naming it,
 * and does not make the whole domain XML unreadable. */
static gboolean
vc_domain_xml_nova_text(const xmlNode *n, char **field, GError **error)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (xmlNode *c = n->children; c != NULL; c = c->next)
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
			g_string_append(s, (const char *)c->content);
	g_free(*field);
	*field = g_strdup(g_strstrip(s->str));
	return TRUE;
}

static gboolean
vc_domain_xml_nova_attr(const xmlNode *n, const char *attr, char **field, GError **error)
{
	for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
		if (a->ns == NULL && strcmp((const char *)a->name, attr) == 0) {
			g_free(*field);
			*field = (char *)xmlNodeListGetString(n->doc, a->children, 1);
			if (*field == NULL)
				*field = g_strdup("");
			return TRUE;
		}
	}
	return TRUE;
}

/* nova's <nova:instance> (nova/virt/libvirt/config.py
 * LibvirtConfigGuestMetaNovaInstance): name, flavor name=, owner/user uuid=,
 * owner/project uuid=. Everything else is ignored; nothing is required. */
static gboolean
vc_domain_xml_parse_nova(const xmlNode *inst, VcDomainInfo *info, GError **error)
{
	for (xmlNode *c = inst->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || !vc_domain_xml_is_nova(c))
			continue;
		if (vc_domain_xml_name_is(c, "name")) {
			if (!vc_domain_xml_nova_text(c, &info->nova_instance, error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "flavor")) {
			if (!vc_domain_xml_nova_attr(c, "name", &info->nova_flavor, error))
				return FALSE;
		} else if (vc_domain_xml_name_is(c, "owner")) {
			for (xmlNode *o = c->children; o != NULL; o = o->next) {
				if (o->type != XML_ELEMENT_NODE || !vc_domain_xml_is_nova(o))
					continue;
				if (vc_domain_xml_name_is(o, "user")) {
					if (!vc_domain_xml_nova_text(o, &info->nova_user, error) ||
					    !vc_domain_xml_nova_attr(o, "uuid", &info->nova_user_id,
								     error))
						return FALSE;
				} else if (vc_domain_xml_name_is(o, "project")) {
					if (!vc_domain_xml_nova_text(o, &info->nova_project,
								     error) ||
					    !vc_domain_xml_nova_attr(o, "uuid",
								     &info->nova_project_id, error))
						return FALSE;
				}
			}
		}
	}
	return TRUE;
}

/* TRUE when the <vm> element has no child but <issued>. */
static gboolean
vc_domain_xml_holds_only_facts(const xmlNode *vm)
{
	for (xmlNode *c = vm->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !vc_domain_xml_name_is(c, "issued"))
			return FALSE;
	return vm->children != NULL;
}

static gboolean
vc_domain_xml_parse_metadata_element(const xmlNode *md, VcDomainInfo *info, GError **error)
{
	gboolean seen_vm = FALSE;

	for (xmlNode *c = md->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (vc_domain_xml_ns_is(c, VC_DOMAIN_NS) && vc_domain_xml_name_is(c, "vm")) {
			g_autoptr(GHashTable) map = vc_policy_map_new();
			g_autofree char *serial = NULL;
			g_autofree char *peer = NULL;
			g_autoptr(VcSignedPlacement) placement = NULL;
			if (seen_vm) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "line %d: a second <virtcert:vm> element", c->line);
				return FALSE;
			}
			/* strict here, and only here: this element is ours */
			if (!vc_domain_xml_check_tree(c, 0, FALSE, error) ||
			    !vc_domain_xml_parse_vm(c, map, &placement, &serial, &peer, error)) {
				g_prefix_error(error, "virtcert metadata: ");
				return FALSE;
			}
			seen_vm = TRUE;
			/* an element holding only the daemon's own facts selects nothing */
			info->has_metadata = !vc_domain_xml_holds_only_facts(c);
			g_hash_table_unref(info->metadata);
			info->metadata = g_steal_pointer(&map);
			info->issued_serial = g_steal_pointer(&serial);
			info->issuer_peer = g_steal_pointer(&peer);
			vc_signed_placement_free(info->placement);
			info->placement = g_steal_pointer(&placement);
		} else if (vc_domain_xml_is_nova(c) && vc_domain_xml_name_is(c, "instance")) {
			if (!vc_domain_xml_parse_nova(c, info, error)) {
				g_prefix_error(error, "nova metadata: ");
				return FALSE;
			}
		}
	}
	return TRUE;
}

/* <devices><channel><target type='virtio' name='org.qemu.guest_agent.0'/>:
 * the only way virtcert reaches into the guest. A running domain's XML says
 * whether the agent is connected (state='connected'). */
static gboolean
vc_domain_xml_has_guest_agent_channel(xmlNode *devices, gboolean *ret_connected)
{
	for (xmlNode *ch = devices->children; ch != NULL; ch = ch->next) {
		if (ch->type != XML_ELEMENT_NODE || ch->ns != NULL ||
		    !vc_domain_xml_name_is(ch, "channel"))
			continue;
		for (xmlNode *t = ch->children; t != NULL; t = t->next) {
			g_autofree char *type = NULL;
			g_autofree char *name = NULL;
			if (t->type != XML_ELEMENT_NODE || t->ns != NULL ||
			    !vc_domain_xml_name_is(t, "target"))
				continue;
			type = vc_domain_xml_get_attr(t, "type", NULL);
			name = vc_domain_xml_get_attr(t, "name", NULL);
			if (g_strcmp0(type, "virtio") == 0 &&
			    g_strcmp0(name, "org.qemu.guest_agent.0") == 0) {
				g_autofree char *state = vc_domain_xml_get_attr(t, "state", NULL);
				*ret_connected = g_strcmp0(state, "connected") == 0;
				return TRUE;
			}
		}
	}
	return FALSE;
}

VcDomainInfo *
vc_domain_info_parse(const char *xml, gssize len, GError **error)
{
	g_autoptr(xmlDoc) doc = NULL;
	g_autoptr(VcDomainInfo) info = g_new0(VcDomainInfo, 1);
	g_autoptr(GError) local = NULL;
	xmlNode *root;
	gboolean seen_name = FALSE, seen_uuid = FALSE;

	info->metadata = vc_policy_map_new();
	doc = vc_domain_xml_parse_safely(xml, len, FALSE, error);
	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (root == NULL || root->ns != NULL || !vc_domain_xml_name_is(root, "domain")) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "not a libvirt domain XML (root element is not <domain>)");
		return NULL;
	}
	for (xmlNode *c = root->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || c->ns != NULL)
			continue;
		if (vc_domain_xml_name_is(c, "name")) {
			if (seen_name) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "domain XML line %d: a second <name>", c->line);
				return NULL;
			}
			seen_name = TRUE;
			/* not stripped: libvirt keeps the name verbatim */
			info->name = vc_domain_xml_node_text(c, FALSE, &local);
			if (info->name == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "domain name refused: %s", local->message);
				return NULL;
			}
		} else if (vc_domain_xml_name_is(c, "uuid")) {
			g_autofree char *text = NULL;
			if (seen_uuid) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "domain XML line %d: a second <uuid>", c->line);
				return NULL;
			}
			seen_uuid = TRUE;
			text = vc_domain_xml_node_text(c, TRUE, &local);
			info->uuid = text != NULL ? vc_text_normalize_uuid(text) : NULL;
			if (info->uuid == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "domain XML line %d: <uuid> is not a UUID", c->line);
				return NULL;
			}
		} else if (vc_domain_xml_name_is(c, "metadata")) {
			if (!vc_domain_xml_parse_metadata_element(c, info, error))
				return NULL;
		} else if (vc_domain_xml_name_is(c, "devices")) {
			info->has_guest_agent =
			    vc_domain_xml_has_guest_agent_channel(c, &info->guest_agent_connected);
		}
	}
	if (info->name == NULL || *info->name == '\0') {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "domain XML has no <name>");
		return NULL;
	}
	if (info->uuid == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "domain XML of \"%s\" has no <uuid>", info->name);
		return NULL;
	}
	return g_steal_pointer(&info);
}

char *
vc_domain_xml_reduce(const char *xml, gssize len, GError **error)
{
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, len, error);
	g_autoptr(xmlDoc) doc = NULL;
	g_autoptr(xmlDoc) out = NULL;
	xmlNode *root, *md = NULL;
	xmlChar *mem = NULL;
	int size = 0;
	char *result;

	/* the same checks as the receiver's: what cannot be read is refused here */
	if (info == NULL)
		return NULL;
	doc = vc_domain_xml_parse_safely(xml, len, FALSE, error);
	if (doc == NULL)
		return NULL;
	out = xmlNewDoc((const xmlChar *)"1.0");
	root = xmlNewDocNode(out, NULL, (const xmlChar *)"domain", NULL);
	xmlDocSetRootElement(out, root);
	for (xmlNode *c = xmlDocGetRootElement(doc)->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || c->ns != NULL)
			continue;
		if (vc_domain_xml_name_is(c, "name") || vc_domain_xml_name_is(c, "uuid")) {
			xmlAddChild(root, xmlDocCopyNode(c, out, 1));
		} else if (vc_domain_xml_name_is(c, "metadata")) {
			for (xmlNode *m = c->children; m != NULL; m = m->next) {
				if (m->type != XML_ELEMENT_NODE)
					continue;
				if (!(vc_domain_xml_ns_is(m, VC_DOMAIN_NS) &&
				      vc_domain_xml_name_is(m, "vm")) &&
				    !(vc_domain_xml_is_nova(m) &&
				      vc_domain_xml_name_is(m, "instance")))
					continue;
				if (md == NULL)
					md = xmlNewChild(root, NULL, (const xmlChar *)"metadata",
							 NULL);
				xmlAddChild(md, xmlDocCopyNode(m, out, 1));
			}
		}
	}
	xmlDocDumpMemoryEnc(out, &mem, &size, "UTF-8");
	if (mem == NULL || size <= 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_FAILED,
				    "cannot serialize the domain XML");
		return NULL;
	}
	result = g_strndup((const char *)mem, (gsize)size);
	xmlFree(mem);
	return result;
}

/* virDomainGetMetadata returns the element without its namespace (<vm> and
 * children in no namespace): put it back, so both forms read the same. */
static void
vc_domain_xml_adopt_virtcert_ns(xmlNode *n, xmlNs *ns)
{
	for (; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (n->ns == NULL)
			xmlSetNs(n, ns);
		vc_domain_xml_adopt_virtcert_ns(n->children, ns);
	}
}

static void
vc_domain_xml_strip_ns(xmlNode *n)
{
	for (; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		n->ns = NULL;
		vc_domain_xml_strip_ns(n->children);
	}
}

static xmlDoc *
vc_domain_xml_parse_metadata_doc(const char *xml, gssize len, GError **error)
{
	g_autoptr(xmlDoc) doc = vc_domain_xml_parse_safely(xml, len, TRUE, error);
	xmlNode *root;

	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (root != NULL && root->ns == NULL && vc_domain_xml_name_is(root, "vm")) {
		xmlNs *ns =
		    xmlNewNs(root, (const xmlChar *)VC_DOMAIN_NS, (const xmlChar *)"virtcert");
		vc_domain_xml_adopt_virtcert_ns(root, ns);
	}
	return g_steal_pointer(&doc);
}

GHashTable *
vc_domain_metadata_parse(const char *xml, gssize len, GError **error)
{
	g_autoptr(xmlDoc) doc = vc_domain_xml_parse_metadata_doc(xml, len, error);
	g_autoptr(GHashTable) map = NULL;
	xmlNode *root;

	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (root == NULL || !vc_domain_xml_ns_is(root, VC_DOMAIN_NS) ||
	    !vc_domain_xml_name_is(root, "vm")) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "virtcert metadata: root element is not <vm> in namespace %s",
			    VC_DOMAIN_NS);
		return NULL;
	}
	map = vc_policy_map_new();
	if (!vc_domain_xml_parse_vm(root, map, NULL, NULL, NULL, error)) {
		g_prefix_error(error, "virtcert metadata: ");
		return NULL;
	}
	return g_steal_pointer(&map);
}

VcSignedPlacement *
vc_domain_placement_parse_document(const char *xml, gssize len, char **ret_uuid, GError **error)
{
	g_autoptr(xmlDoc) doc = NULL;
	g_autoptr(GHashTable) map = vc_policy_map_new();
	g_autoptr(VcSignedPlacement) sp = NULL;
	xmlNode *root;

	if (ret_uuid != NULL)
		*ret_uuid = NULL;
	doc = vc_domain_xml_parse_safely(xml, len, FALSE, error);
	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (root != NULL && root->ns == NULL && vc_domain_xml_name_is(root, "domain")) {
		g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, len, error);
		if (info == NULL)
			return NULL;
		if (ret_uuid != NULL)
			*ret_uuid = g_strdup(info->uuid);
		sp = g_steal_pointer(&info->placement);
		return sp != NULL ? g_steal_pointer(&sp) : vc_signed_placement_new();
	}
	if (root != NULL && root->ns == NULL &&
	    (vc_domain_xml_name_is(root, "vm") || vc_domain_xml_name_is(root, "placement"))) {
		xmlNs *ns =
		    xmlNewNs(root, (const xmlChar *)VC_DOMAIN_NS, (const xmlChar *)"virtcert");
		vc_domain_xml_adopt_virtcert_ns(root, ns);
	}
	if (root == NULL || !vc_domain_xml_ns_is(root, VC_DOMAIN_NS)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "not a domain XML, <virtcert:vm> or <virtcert:placement> element "
			    "(namespace %s)",
			    VC_DOMAIN_NS);
		return NULL;
	}
	if (vc_domain_xml_name_is(root, "vm")) {
		if (!vc_domain_xml_parse_vm(root, map, &sp, NULL, NULL, error)) {
			g_prefix_error(error, "virtcert metadata: ");
			return NULL;
		}
		return sp != NULL ? g_steal_pointer(&sp) : vc_signed_placement_new();
	}
	if (vc_domain_xml_name_is(root, "placement")) {
		sp = vc_signed_placement_new();
		if (!vc_domain_xml_parse_placement(root, map, sp, error)) {
			g_prefix_error(error, "virtcert placement: ");
			return NULL;
		}
		return g_steal_pointer(&sp);
	}
	vc_domain_xml_unknown_element(root, "metadata", error);
	return NULL;
}

void
vc_domain_info_get_name_vars(const VcDomainInfo *info, VcNameVars *ret_vars)
{
	g_return_if_fail(info != NULL);
	g_return_if_fail(ret_vars != NULL);
	ret_vars->name = info->name;
	ret_vars->uuid = info->uuid;
	ret_vars->project = info->nova_project;
	ret_vars->project_id = info->nova_project_id;
	ret_vars->user = info->nova_user;
	ret_vars->instance = info->nova_instance;
}

VcPolicy *
vc_domain_info_resolve_policy(const VcDomainInfo *info, VcPolicySet *set, gboolean issue_all,
			      const char *const *default_names, gint64 default_lifetime_s,
			      GError **error)
{
	g_autoptr(GHashTable) map = NULL;
	g_autoptr(GHashTable) sources =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_auto(GStrv) bounds = NULL;
	g_autofree char *source = NULL;
	VcPolicy *policy;

	g_return_val_if_fail(info != NULL, NULL);
	if (set != NULL) {
		VcPolicySubject subject = {
		    .name = info->name,
		    .uuid = info->uuid,
		    .project = info->nova_project,
		    .project_id = info->nova_project_id,
		};
		map = vc_policy_set_lookup(set, &subject, &source);
		bounds = vc_policy_set_lookup_bounds(set, &subject);
	}
	if (info->has_metadata) {
		if (map == NULL) {
			/* no host policy selects the VM: its metadata alone, bounded
			 * by the CA's name constraints only */
			GHashTableIter it;
			gpointer k;
			map = vc_policy_map_new();
			source = g_strdup("domain metadata");
			vc_policy_map_merge(map, info->metadata);
			g_hash_table_iter_init(&it, map);
			while (g_hash_table_iter_next(&it, &k, NULL))
				g_hash_table_insert(sources, g_strdup(k), g_strdup(source));
		} else {
			g_autofree char *group = g_strdup(source);
			char *s = g_strconcat(source, " + domain metadata", NULL);
			g_free(source);
			source = s;
			/* metadata narrows host policy, never widens it */
			if (!vc_policy_map_narrow(map, info->metadata, group,
						  (const char *const *)bounds, sources, error)) {
				g_prefix_error(error, "VM %s (%s): ", info->name, info->uuid);
				return NULL;
			}
		}
	} else if (map != NULL) {
		GHashTableIter it;
		gpointer k;
		g_hash_table_iter_init(&it, map);
		while (g_hash_table_iter_next(&it, &k, NULL))
			g_hash_table_insert(sources, g_strdup(k), g_strdup(source));
	}
	if (map == NULL) {
		if (!issue_all)
			return NULL;
		map = vc_policy_map_new();
		source = g_strdup("issue-all defaults");
	}
	if (!g_hash_table_contains(map, "names") && default_names != NULL &&
	    default_names[0] != NULL)
		g_hash_table_insert(map, g_strdup("names"), g_strdupv((GStrv)default_names));
	if (!g_hash_table_contains(sources, "names") && g_hash_table_contains(map, "names"))
		g_hash_table_insert(sources, g_strdup("names"), g_strdup("default names"));
	policy = vc_policy_new_from_map(map, source, default_lifetime_s, error);
	if (policy == NULL)
		g_prefix_error(error, "VM %s (%s): ", info->name, info->uuid);
	else
		policy->sources = g_steal_pointer(&sources);
	return policy;
}

char *
vc_domain_metadata_set_issued(const char *vm_xml, const char *serial, const char *peer,
			      GError **error)
{
	g_autoptr(xmlDoc) doc = NULL;
	g_autoptr(GHashTable) map = NULL;
	g_autoptr(xmlBuffer) buf = NULL;
	xmlNode *root, *issued = NULL;
	xmlNs *ns;

	if (vm_xml != NULL && *vm_xml != '\0') {
		/* what is there must be valid virtcert metadata: never rewrite garbage */
		map = vc_domain_metadata_parse(vm_xml, -1, error);
		if (map == NULL)
			return NULL;
		doc = vc_domain_xml_parse_metadata_doc(vm_xml, -1, error);
		if (doc == NULL)
			return NULL;
		root = xmlDocGetRootElement(doc);
	} else {
		doc = xmlNewDoc((const xmlChar *)"1.0");
		root = xmlNewDocNode(doc, NULL, (const xmlChar *)"vm", NULL);
		xmlDocSetRootElement(doc, root);
		ns = xmlNewNs(root, (const xmlChar *)VC_DOMAIN_NS, (const xmlChar *)"virtcert");
		xmlSetNs(root, ns);
	}
	ns = root->ns;
	for (xmlNode *c = root->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && vc_domain_xml_name_is(c, "issued"))
			issued = c;
	if (issued == NULL)
		issued = xmlNewChild(root, ns, (const xmlChar *)"issued", NULL);
	/* xmlSetProp escapes the values */
	xmlUnsetProp(issued, (const xmlChar *)"serial");
	xmlUnsetProp(issued, (const xmlChar *)"peer");
	if (serial != NULL)
		xmlSetProp(issued, (const xmlChar *)"serial", (const xmlChar *)serial);
	if (peer != NULL)
		xmlSetProp(issued, (const xmlChar *)"peer", (const xmlChar *)peer);
	/* virDomainSetMetadata wants the element without a namespace: it adds
	 * its own declaration and refuses a second one */
	vc_domain_xml_strip_ns(root);
	xmlFreeNsList(root->nsDef);
	root->nsDef = NULL;
	buf = xmlBufferCreate();
	if (buf == NULL || xmlNodeDump(buf, doc, root, 0, 0) < 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_FAILED,
				    "cannot serialize the virtcert metadata");
		return NULL;
	}
	return g_strndup((const char *)xmlBufferContent(buf), (gsize)xmlBufferLength(buf));
}
