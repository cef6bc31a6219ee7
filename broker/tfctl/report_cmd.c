/* tfctl report impact ALERT-ID: from the trace, who received data of the
 * flow an alert is about in the window before it, as JSON and, with
 * --html, as a page with a diagram of the flow for the data owner. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/console/assets.h"
#include "broker/util/number.h"
#include "broker/tfctl/tfctl.h"
#include "broker/trace/trace_query.h"

static const char report_usage[] =
	"usage: tfctl report impact ALERT-ID --db DIR [--window S] [--html FILE]\n"
	"\n"
	"Prints, from the trace store, what the flow an alert is about (its policy\n"
	"and publisher) sent in the S seconds before the alert (default 3600): how\n"
	"many messages, on which topics, and which recipients received them within\n"
	"those S seconds; and how many of the flow's messages were held from the\n"
	"window's start on, those held after the alert included. With --html, also\n"
	"writes FILE: a page, complete in itself, with a diagram of the flow, for\n"
	"the data owner to open in a browser.\n"
	"Exit status 1 when there is no such alert, 2 on bad usage or an unreadable\n"
	"store.\n";

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl report: %s\n%s", what, report_usage);
	return TFCTL_USAGE;
}

/* Text for HTML: & < > " escaped. */
static void put_html(FILE *out, const char *text)
{
	for (; *text != '\0'; text++) {
		switch (*text) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		default: fputc(*text, out);
		}
	}
}

/* JSON inside a <script> element: "</" would end it. */
static void put_script_json(FILE *out, const char *json)
{
	for (; *json != '\0'; json++) {
		if (json[0] == '<' && json[1] == '/')
			fputs("<\\", out);
		else
			fputc(*json, out);
	}
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The page: the facts as text and a table (readable without scripts),
 * and a diagram drawn from the same data by impact.js, the console's
 * drawing of the same report (broker/console/assets/), inlined so that
 * the file is complete in itself. */
static void put_asset(FILE *out, const char *name)
{
	const struct tf_console_asset *a = tf_console_asset_find(name);

	if (a != NULL)
		fputs(tf_console_asset_text(a), out);
}

static int write_html(const char *path, const cJSON *impact)
{
	const cJSON *alert = cJSON_GetObjectItemCaseSensitive(impact, "alert"), *r;
	char *json = cJSON_PrintUnformatted(impact);
	FILE *out;

	if (json == NULL)
		return usage_error("out of memory");
	out = fopen(path, "w");
	if (out == NULL) {
		free(json);
		fprintf(stderr, "tfctl: %s: cannot write the page\n", path);
		return TFCTL_USAGE;
	}
	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>Impact of alert ");
	put_html(out, str(alert, "id"));
	fputs("</title><style>", out);
	put_asset(out, "impact.css");
	fputs("</style></head><body class=\"impact-report\">\n<h1>Impact of a ", out);
	put_html(out, str(alert, "kind"));
	fputs(" alert</h1>\n<p class=\"alert\">", out);
	put_html(out, str(alert, "detail"));
	fputs("</p>\n<p>Flow <b>", out);
	put_html(out, str(impact, "flow"));
	fprintf(out, "</b>: %.0f messages in the window before the alert; %.0f of the flow's "
		"messages held from the window's start on. "
		"Action: <b>", num(impact, "messages"), num(impact, "held"));
	put_html(out, str(alert, "action"));
	fputs("</b>.</p>\n<div id=\"diagram\"></div>\n<h2>Recipients</h2>\n<table>"
		"<tr><th>organization</th><th>client</th><th>messages</th></tr>\n", out);
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(impact, "recipients")) {
		fputs("<tr><td>", out);
		put_html(out, str(r, "org"));
		fputs("</td><td>", out);
		put_html(out, str(r, "client"));
		fprintf(out, "</td><td>%.0f</td></tr>\n", num(r, "messages"));
	}
	fputs("</table>\n<script type=\"application/json\" id=\"impact\">", out);
	put_script_json(out, json);
	fputs("</script>\n<script>", out);
	put_asset(out, "impact.js");
	fputs("</script>\n</body></html>\n", out);
	free(json);
	if (fclose(out) != 0) {
		fprintf(stderr, "tfctl: %s: cannot write the page\n", path);
		return TFCTL_USAGE;
	}
	return TFCTL_OK;
}

static int cmd_impact(int argc, char **argv)
{
	const char *db = NULL, *html = NULL, *alert;
	struct tf_trace_store *s;
	struct tf_err err = { "" };
	long window_s = TF_IMPACT_WINDOW_DEFAULT_S;
	cJSON *impact;
	char *text;
	int rc;

	if (argc < 1 || strncmp(argv[0], "--", 2) == 0)
		return usage_error("an ALERT-ID is required");
	alert = argv[0];
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return usage_error("an option is missing its value");
		if (strcmp(argv[i], "--db") == 0)
			db = argv[i + 1];
		else if (strcmp(argv[i], "--html") == 0)
			html = argv[i + 1];
		else if (strcmp(argv[i], "--window") != 0
				|| !tf_parse_long(argv[i + 1], 1, TF_IMPACT_WINDOW_MAX_S, &window_s))
			return usage_error("unknown option or bad value");
	}
	if (db == NULL)
		return usage_error("--db DIR is required");
	if (tf_trace_open(db, false, 0, &s, &err) != TF_OK
			|| tf_trace_read_begin(s, &err) != TF_OK) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return TFCTL_USAGE;
	}
	impact = tf_query_impact(s, alert, (int64_t)window_s * 1000, &err);
	tf_trace_read_end(s);
	tf_trace_close(s);
	if (impact == NULL) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return strstr(err.msg, "memory") ? TFCTL_USAGE : TFCTL_NO;
	}
	text = cJSON_PrintUnformatted(impact);
	if (text != NULL)
		printf("%s\n", text);
	free(text);
	rc = html != NULL ? write_html(html, impact) : TFCTL_OK;
	cJSON_Delete(impact);
	return rc;
}

int tfctl_report(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "--help") == 0) {
		fputs(report_usage, stdout);
		return TFCTL_OK;
	}
	if (argc >= 1 && strcmp(argv[0], "impact") == 0)
		return cmd_impact(argc - 1, argv + 1);
	return usage_error("impact is the one report");
}
