//! The status page: `GET /` (every managed model) and `GET /models/NAME` (one, in full),
//! server-rendered HTML over the shared [`Status`] and its [`page`] records.
//!
//! **Safe by construction.** Markup is written through `Markup`, which takes literal
//! markup only as `&'static str` (`Markup::raw`): every string that comes from a
//! manifest, the registry, an error or a request goes through `Markup::text`, that is
//! through [`escape`], the one escaping function, for element content and attribute values
//! alike. The page holds no inline script or style: the stylesheet and the script (filter
//! box, refresh) are served from `/assets/`, and [`CONTENT_SECURITY_POLICY`] allows nothing
//! else (no inline event handler, no inline script, no remote load). The page is read-only:
//! its one form is the filter, a `GET`.

use std::fmt::Write as _;

use super::page::{self, Group, ModelRecord, PageState, Recorded, Row};
use super::status::{ModelStatus, ReconcileResult, Status};
use crate::gate::Verdict;
use crate::render::plan::change_line;

/// The `Content-Security-Policy` of the page and its assets: same-origin script and
/// stylesheet files only, no inline script, style or event handler, nothing remote, no
/// framing, and forms only to the page itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The stylesheet, served at [`CSS_PATH`].
pub const CSS: &str = include_str!("page.css");
/// The script (filter box, refresh), served at [`JS_PATH`].
pub const JS: &str = include_str!("page.js");
/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/assets/page.css";
/// Where the script is served.
pub const JS_PATH: &str = "/assets/page.js";

/// How many recent events the overview shows per model (the model's page shows them all).
const EVENTS_ON_OVERVIEW: usize = 3;

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by character references: safe as element
/// content and as a quoted attribute value. The page's only escaping function.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// `name` percent-encoded as one path segment (every byte but the unreserved ones), for
/// links to `/models/NAME`.
pub fn path_segment(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// An HTML document being written: literal markup only from `&'static str`, everything
/// else escaped.
#[derive(Debug, Default)]
struct Markup(String);

impl Markup {
    /// Literal markup, written by this module.
    fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Text (content or attribute value), escaped.
    fn text(&mut self, text: &str) -> &mut Self {
        self.0.push_str(&escape(text));
        self
    }

    /// `<tag class="class">text</tag>`, the text escaped.
    fn element(&mut self, open: &'static str, text: &str, close: &'static str) -> &mut Self {
        self.raw(open).text(text).raw(close)
    }
}

/// What the page shows of the request.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The filter box's text (`?q=`).
    pub filter: String,
}

/// `GET /`: every managed model.
pub fn index(status: &Status, view: &View) -> String {
    let mut html = Markup::default();
    let title = format!("mlreg watch · {} model(s)", status.models.len());
    head(&mut html, &title);
    header(&mut html, status);
    html.raw("<main>\n");
    problems(&mut html, status);
    html.raw("<form class=\"filter\" method=\"get\" action=\"/\" role=\"search\">")
        .raw("<label for=\"filter\">Filter models</label>")
        .raw("<input id=\"filter\" name=\"q\" type=\"search\" autocomplete=\"off\" placeholder=\"name or state, e.g. drift\" value=\"")
        .text(&view.filter)
        .raw("\"><button type=\"submit\">Filter</button></form>\n");
    if status.models.is_empty() {
        html.raw("<p class=\"empty\">No managed model yet: the manifests have not been read, or declare none.</p>\n");
    }
    let filter = view.filter.trim().to_lowercase();
    for group in page::groups(status) {
        section(&mut html, status, &group, &filter);
    }
    html.raw("</main>\n");
    footer(&mut html);
    html.0
}

/// `GET /models/NAME`: one model in full; `None` when no managed model has that name.
pub fn model(status: &Status, name: &str) -> Option<String> {
    let model = status.models.iter().find(|model| model.name == name)?;
    let mut html = Markup::default();
    head(&mut html, &format!("{name} · mlreg watch"));
    header(&mut html, status);
    html.raw("<main>\n<p class=\"back\"><a href=\"/\">← All models</a></p>\n");
    card(&mut html, status, model, true, "");
    html.raw("</main>\n");
    footer(&mut html);
    Some(html.0)
}

/// The page of a model no manifest declares (served with 404).
pub fn not_found(status: &Status, name: &str) -> String {
    let mut html = Markup::default();
    head(&mut html, "Not found · mlreg watch");
    header(&mut html, status);
    html.raw("<main>\n<section class=\"notice\"><h2>No managed model named <span class=\"mono\">")
        .text(name)
        .raw("</span></h2><p>No manifest the daemon reads declares it. <a href=\"/\">See every managed model</a>.</p></section>\n</main>\n");
    footer(&mut html);
    html.0
}

fn head(html: &mut Markup, title: &str) {
    html.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<meta name=\"referrer\" content=\"no-referrer\">\n")
        .element("<title>", title, "</title>\n")
        .raw("<link rel=\"stylesheet\" href=\"/assets/page.css\">\n")
        .raw("<script src=\"/assets/page.js\" defer></script>\n")
        .raw("</head>\n<body>\n");
}

fn footer(html: &mut Markup) {
    html.raw("<footer>Read-only view of <span class=\"mono\">mlreg watch</span>; refreshes every 15 s. ")
        .raw("Machine-readable: <a href=\"/status\">/status</a> · <a href=\"/metrics\">/metrics</a> · <a href=\"/readyz\">/readyz</a></footer>\n")
        .raw("</body>\n</html>\n");
}

fn header(html: &mut Markup, status: &Status) {
    html.raw("<header class=\"top\">\n<div class=\"title\"><h1><a href=\"/\">mlreg watch</a></h1>");
    if status.ready {
        html.raw("<span class=\"ready yes\" id=\"readiness\"><span class=\"icon\" aria-hidden=\"true\">●</span> Ready</span>");
    } else {
        html.raw("<span class=\"ready no\" id=\"readiness\"><span class=\"icon\" aria-hidden=\"true\">●</span> Not ready</span>");
    }
    html.raw("</div>\n");
    if let Some(reason) = &status.reason {
        html.element("<p class=\"reason\">", reason, "</p>\n");
    }
    html.raw("<dl class=\"facts\">\n");
    fact(
        html,
        "Registry",
        status.page.registry.as_deref().unwrap_or("(unknown)"),
        true,
    );
    let commit = status.page.commit.as_deref();
    html.raw("<div><dt>Commit</dt><dd class=\"mono\" id=\"commit\"");
    if let Some(commit) = commit {
        html.raw(" title=\"")
            .text(commit)
            .raw("\">")
            .text(short(commit));
    } else {
        html.raw(">(not a git checkout)");
    }
    html.raw("</dd></div>\n");
    fact(html, "Manifests", &status.dir.display().to_string(), true);
    let manifests = if status.manifests.valid {
        format!("valid · {} model(s)", status.manifests.models)
    } else {
        format!(
            "INVALID · {} problem(s) · using the last valid state",
            status.manifests.errors.len()
        )
    };
    fact(html, "State", &manifests, false);
    match &status.last_reconcile {
        Some(last) => {
            let result = match last.result {
                ReconcileResult::Success => "succeeded",
                ReconcileResult::Failure => "failed",
            };
            html.raw("<div><dt>Last reconcile</dt><dd>");
            time(html, &last.started_at);
            html.text(&format!(
                " · {} · {result} · {} ms · {} applied",
                last.trigger, last.duration_ms, last.changes_applied
            ))
            .raw("</dd></div>\n");
        }
        None => fact(html, "Last reconcile", "none yet", false),
    }
    fact(
        html,
        "Self-heal",
        if status.self_heal {
            "on: drift is reverted"
        } else {
            "off: drift is reported"
        },
        false,
    );
    html.raw("</dl>\n<ul class=\"counts\" aria-label=\"Models per state\">\n");
    for state in PageState::ALL {
        let count = status
            .models
            .iter()
            .filter(|model| PageState::of(model, status) == state)
            .count();
        if count == 0 && matches!(state, PageState::Unknown | PageState::OutOfSync) {
            continue;
        }
        html.raw("<li class=\"count ")
            .text(state.slug())
            .raw(if count == 0 { " zero" } else { "" })
            .raw("\" data-state=\"")
            .text(state.slug())
            .raw("\"><b>")
            .text(&count.to_string())
            .raw("</b> ")
            .text(state.label())
            .raw("</li>\n");
    }
    html.raw("</ul>\n</header>\n");
}

fn fact(html: &mut Markup, name: &'static str, value: &str, mono: bool) {
    html.raw("<div><dt>")
        .raw(name)
        .raw(if mono {
            "</dt><dd class=\"mono\">"
        } else {
            "</dt><dd>"
        })
        .text(value)
        .raw("</dd></div>\n");
}

/// The manifest problems and the last reconcile's error, above the models.
fn problems(html: &mut Markup, status: &Status) {
    if !status.manifests.valid && !status.manifests.errors.is_empty() {
        html.raw("<section class=\"alert invalid\" id=\"manifest-problems\"><h2>The manifests are invalid</h2>")
            .raw("<p>Nothing is applied until they are fixed; the last valid desired state stays in use.</p><ul>");
        for error in &status.manifests.errors {
            html.element("<li class=\"mono\">", error, "</li>");
        }
        html.raw("</ul></section>\n");
    }
    // The header's readiness reason often says it already.
    if let Some(last) = &status.last_reconcile
        && let Some(error) = &last.error
        && !status
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains(error.as_str()))
    {
        html.raw("<section class=\"alert failed\" id=\"reconcile-error\"><h2>The last reconcile failed</h2>")
            .element("<p>", error, "</p></section>\n");
    }
}

fn section(html: &mut Markup, status: &Status, group: &Group<'_>, filter: &str) {
    html.raw("<section class=\"group\" data-environment=\"")
        .text(group.environment.unwrap_or(""))
        .raw("\">\n");
    if let Some(environment) = group.environment {
        html.raw("<h2 class=\"environment\">Environment <span class=\"mono\">")
            .text(environment)
            .raw("</span></h2>\n");
    }
    html.raw("<div class=\"models\">\n");
    for model in &group.models {
        card(html, status, model, false, filter);
    }
    html.raw("</div>\n</section>\n");
}

/// One model: its state, declared next to observed, pending changes, gates, the last
/// reconcile and recent events. `full` shows everything (the model's own page).
fn card(html: &mut Markup, status: &Status, model: &ModelStatus, full: bool, filter: &str) {
    let state = PageState::of(model, status);
    let empty = ModelRecord::default();
    let record = status.page.models.get(&model.name).unwrap_or(&empty);
    let hidden = !filter.is_empty()
        && !model.name.to_lowercase().contains(filter)
        && !state.label().contains(filter)
        && !state.slug().contains(filter);
    html.raw("<article class=\"model ")
        .text(state.slug())
        .raw("\" data-name=\"")
        .text(&model.name)
        .raw("\" data-state=\"")
        .text(state.slug())
        .raw("\" data-label=\"")
        .text(state.label())
        .raw(if hidden { "\" hidden>\n" } else { "\">\n" })
        .raw("<div class=\"head\"><h3 class=\"name mono\">");
    if full {
        html.text(&model.name);
    } else {
        html.raw("<a href=\"/models/")
            .text(&path_segment(&model.name))
            .raw("\">")
            .text(&model.name)
            .raw("</a>");
    }
    html.raw("</h3>");
    badge(html, state);
    html.raw("</div>\n").element(
        "<p class=\"manifest mono\">",
        &model.manifest.display().to_string(),
        "</p>\n",
    );

    for error in page::manifest_errors(model, status) {
        html.element("<p class=\"problem invalid mono\">", error, "</p>\n");
    }
    if let Some(error) = &model.last_error {
        html.raw("<p class=\"problem failed\"><b>Error:</b> ")
            .text(error)
            .raw("</p>\n");
    }
    if let Some(record_state) = blocked_reason(model) {
        html.raw("<p class=\"problem blocked\"><b>Held by a gate:</b> ")
            .text(&record_state)
            .raw("</p>\n");
    }

    targets(html, &record.rows);
    if !record.rows.is_empty()
        && record
            .observed
            .as_ref()
            .is_some_and(|observed| observed.before_apply)
    {
        html.raw("<p class=\"muted\">Registry values as read before the last apply, which did not converge.</p>\n");
    }
    description(html, record, full);
    pending(html, model);
    gates(html, model);

    if let Some(last) = &record.last {
        html.raw("<p class=\"last\"><span class=\"label\">Last reconcile</span> ");
        time(html, &last.at);
        html.text(&format!(" · {}", last.trigger))
            .raw(match state {
                PageState::InSync => " · <span class=\"outcome ok\">",
                PageState::Failed | PageState::Invalid => " · <span class=\"outcome bad\">",
                _ => " · <span class=\"outcome\">",
            })
            .text(&last.outcome)
            .raw("</span></p>\n");
    }
    events(html, &record.events, full);
    html.raw("</article>\n");
}

fn badge(html: &mut Markup, state: PageState) {
    let icon = match state {
        PageState::InSync => "✓",
        PageState::OutOfSync => "↻",
        PageState::Drift => "≠",
        PageState::Blocked => "⊘",
        PageState::Failed => "✗",
        PageState::Invalid => "⚠",
        PageState::Unknown => "?",
    };
    html.raw("<span class=\"badge ")
        .text(state.slug())
        .raw("\"><span class=\"icon\" aria-hidden=\"true\">")
        .text(icon)
        .raw("</span> <span class=\"state-label\">")
        .text(state.label())
        .raw("</span></span>");
}

fn blocked_reason(model: &ModelStatus) -> Option<String> {
    (model.state == super::status::SyncState::Blocked).then(|| page::failing_checks(model))
}

fn targets(html: &mut Markup, rows: &[Row]) {
    if rows.is_empty() {
        html.raw("<p class=\"muted\">Declares no stage or alias.</p>\n");
        return;
    }
    html.raw("<table class=\"targets\"><thead><tr><th scope=\"col\">Target</th><th scope=\"col\">Declared</th><th scope=\"col\">Registry</th></tr></thead><tbody>\n");
    for row in rows {
        html.raw(if row.matches() {
            "<tr class=\"same\" data-target=\""
        } else {
            "<tr class=\"differs\" data-target=\""
        })
        .text(&row.target)
        .raw("\"><th scope=\"row\" class=\"mono\">")
        .text(&row.target)
        .raw("</th><td class=\"mono declared\">")
        .text(&row.declared)
        .raw("</td><td class=\"mono observed\">")
        .text(&row.observed)
        .raw(if row.matches() {
            "</td></tr>\n"
        } else {
            " <span class=\"differs-mark\">≠</span></td></tr>\n"
        });
    }
    html.raw("</tbody></table>\n");
}

fn description(html: &mut Markup, record: &ModelRecord, full: bool) {
    let observed = record
        .observed
        .as_ref()
        .map(|observed| observed.description.as_str())
        .filter(|description| !description.is_empty());
    if full {
        html.raw("<dl class=\"descriptions\"><div><dt>Declared description</dt><dd>")
            .text(
                record
                    .declared_description
                    .as_deref()
                    .unwrap_or("(not declared)"),
            )
            .raw("</dd></div><div><dt>Registry description</dt><dd class=\"registry-description\">")
            .text(observed.unwrap_or("(empty)"))
            .raw("</dd></div></dl>\n");
        if let Some(observed) = &record.observed {
            html.raw("<p class=\"muted\">Registry last read ");
            time(html, &observed.read_at);
            html.raw(if observed.exists {
                "</p>\n"
            } else {
                "; the registered model does not exist yet.</p>\n"
            });
        }
    } else if let Some(observed) = observed {
        html.element(
            "<p class=\"registry-description\" title=\"Registry description\">",
            observed,
            "</p>\n",
        );
    }
}

fn pending(html: &mut Markup, model: &ModelStatus) {
    if model.pending_changes.is_empty() {
        return;
    }
    html.raw("<div class=\"pending\"><h4>Pending changes ")
        .raw(if model.will_apply {
            "<span class=\"muted\">(the daemon applies them)</span>"
        } else {
            "<span class=\"muted\">(reported only; not applied)</span>"
        })
        .raw("</h4><ul>");
    for change in &model.pending_changes {
        html.element("<li class=\"mono\">", &change_line(change), "</li>");
    }
    html.raw("</ul></div>\n");
}

fn gates(html: &mut Markup, model: &ModelStatus) {
    if model.gates.is_empty() {
        return;
    }
    html.raw("<div class=\"gates\"><h4>Gates</h4>");
    for gate in &model.gates {
        html.raw("<table class=\"gate\"><caption>version <span class=\"mono\">")
            .text(&gate.version.to_string())
            .raw("</span> → <span class=\"mono\">")
            .text(&gate.target.to_string())
            .raw(if gate.passed() {
                "</span> <span class=\"verdict pass\">passes</span></caption>"
            } else {
                "</span> <span class=\"verdict fail\">blocked</span></caption>"
            })
            .raw("<thead><tr><th scope=\"col\">Check</th><th scope=\"col\">Expected</th><th scope=\"col\">Observed</th><th scope=\"col\">Verdict</th></tr></thead><tbody>");
        for check in &gate.checks {
            html.element("<tr><td>", &check.check, "</td>")
                .element("<td class=\"mono\">", &check.expected, "</td>")
                .element("<td class=\"mono\">", &check.observed, "</td>")
                .raw(match check.verdict {
                    Verdict::Pass => "<td><span class=\"verdict pass\">",
                    Verdict::Fail | Verdict::Unverifiable => "<td><span class=\"verdict fail\">",
                })
                .text(check.verdict.as_str())
                .raw("</span></td></tr>");
        }
        html.raw("</tbody></table>");
    }
    html.raw("</div>\n");
}

fn events(html: &mut Markup, events: &std::collections::VecDeque<Recorded>, full: bool) {
    if events.is_empty() {
        return;
    }
    html.raw("<div class=\"events\"><h4>Recent events</h4><ol>");
    let shown = if full {
        events.len()
    } else {
        EVENTS_ON_OVERVIEW
    };
    for recorded in events.iter().rev().take(shown) {
        let event = &recorded.event;
        html.raw("<li class=\"event\"><span class=\"kind ")
            .text(event.event.as_str())
            .raw("\">")
            .text(event.event.as_str())
            .raw("</span> ");
        time(html, &recorded.at);
        if let Some(commit) = &event.commit {
            html.raw(" <span class=\"mono commit\" title=\"")
                .text(commit)
                .raw("\">")
                .text(short(commit))
                .raw("</span>");
        }
        if let Some(detail) = &event.detail {
            html.element("<div class=\"detail\">", detail, "</div>");
        }
        if full && !event.changes.is_empty() {
            html.raw("<ul>");
            for change in &event.changes {
                html.element("<li class=\"mono\">", &change_line(change), "</li>");
            }
            html.raw("</ul>");
        } else if !event.changes.is_empty() {
            html.element(
                "<div class=\"muted\">",
                &format!("{} change(s)", event.changes.len()),
                "</div>",
            );
        }
        html.raw("</li>");
    }
    html.raw("</ol></div>\n");
}

/// `<time>` with the full RFC 3339 value, shown as `2026-11-28 10:15:03 UTC`.
fn time(html: &mut Markup, rfc3339: &str) {
    let shown = match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(clock)) if rfc3339.ends_with('Z') => format!("{date} {clock} UTC"),
        _ => rfc3339.to_owned(),
    };
    html.raw("<time datetime=\"")
        .text(rfc3339)
        .raw("\">")
        .text(&shown)
        .raw("</time>");
}

/// The first 12 characters of a commit.
fn short(commit: &str) -> &str {
    commit
        .char_indices()
        .nth(12)
        .map_or(commit, |(end, _)| &commit[..end])
}

#[cfg(test)]
mod tests;
