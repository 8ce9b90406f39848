/*
 * template.h
 *		Message templates: the merge-field tokenizer and the renderer.
 *
 * A template is text with merge fields {{name}}, {{properties.plan}} or
 * {{name|default}}.  TemplateParse splits it once into literal and field
 * parts; the same parse serves validation (taskflow.template_fields) and
 * rendering (taskflow.render, taskflow.render_member).
 */
#ifndef TASKFLOW_TEMPLATE_H
#define TASKFLOW_TEMPLATE_H

#include "lib/stringinfo.h"

typedef enum TemplatePartKind
{
	TEMPLATE_LITERAL,			/* text copied as it is */
	TEMPLATE_FIELD				/* a merge field */
} TemplatePartKind;

typedef struct TemplatePartData
{
	TemplatePartKind kind;
	const char *text;			/* literal text, or the field name */
	int			len;
	const char *fallback;		/* default text of a field; NULL if none */
	int			fallback_len;
	int			position;		/* 1-based character position in source */
} TemplatePartData;

typedef TemplatePartData *TemplatePart;

typedef struct TemplateData
{
	int			nparts;
	int			nfields;
	TemplatePart parts;
} TemplateData;

typedef TemplateData *Template;

/* How merge-field values are written into the output. */
typedef enum TemplateEscape
{
	TEMPLATE_ESCAPE_TEXT,		/* as they are */
	TEMPLATE_ESCAPE_HTML,		/* & < > " ' as entities */
	TEMPLATE_ESCAPE_HEADER,		/* control characters become spaces */
	TEMPLATE_ESCAPE_JSON		/* as the inside of a JSON string */
} TemplateEscape;

extern Template TemplateParse(const char *src, int len, const char *what);
extern void TemplateAppendEscaped(StringInfo out, TemplateEscape escape,
								  const char *value, int len);

#endif							/* TASKFLOW_TEMPLATE_H */
