//! News and health-education articles (INFO-5): rich text written by staff (`content.write`),
//! read by everyone once published. The body is HTML from the console's editor, so it is
//! sanitised on input (`ammonia`, an allow-list of tags and attributes): what is stored is
//! already safe to render in the mini-program's rich-text view, and no reader has to trust
//! the writer's browser. Stored as back-office documents (`ARTICLE_DOCS`) whose version is a
//! compare-and-set, like announcements.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DepartmentId, StaffId, ValidationError};

/// The back-office document kind articles are stored as.
pub const ARTICLE_DOCS: &str = "article";

/// Longest body kept, in characters of sanitised HTML.
const MAX_BODY: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleKind {
    /// 医院新闻.
    News,
    /// 健康宣教.
    HealthEducation,
}

/// What staff write: a new article, or every field of a revision.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleDraft {
    pub kind: ArticleKind,
    /// 1 to 64 printable characters.
    pub title: String,
    /// Up to 200 characters of plain text for the list; may be empty.
    #[serde(default)]
    pub summary: String,
    /// HTML; sanitised on input (scripts, event handlers, styles and unknown tags removed).
    pub body_html: String,
    /// The department it belongs to (health education for its patients), if any.
    pub department_id: Option<DepartmentId>,
    /// Whether patients can read it.
    pub published: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Article {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub kind: ArticleKind,
    pub title: String,
    pub summary: String,
    /// Sanitised HTML.
    pub body_html: String,
    pub department_id: Option<DepartmentId>,
    pub published: bool,
    /// When it was first published (UTC); kept when it is taken down and put up again.
    pub published_at: Option<DateTime<Utc>>,
    pub created_by: StaffId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Article {
    /// A new article from `draft`, checked and sanitised.
    pub fn new(draft: ArticleDraft, by: StaffId, now: DateTime<Utc>) -> Result<Self, ValidationError> {
        let mut a = Article {
            id: Uuid::now_v7(),
            kind: draft.kind,
            title: String::new(),
            summary: String::new(),
            body_html: String::new(),
            department_id: None,
            published: false,
            published_at: None,
            created_by: by,
            created_at: now,
            updated_at: now,
        };
        a.revise(draft, now)?;
        Ok(a)
    }

    /// Replaces every field staff write with `draft`'s, checked and sanitised.
    pub fn revise(&mut self, draft: ArticleDraft, now: DateTime<Utc>) -> Result<(), ValidationError> {
        let title = draft.title.trim();
        if title.is_empty() || title.chars().count() > 64 || title.chars().any(char::is_control) {
            return Err(ValidationError::new("title", "1 to 64 printable characters"));
        }
        let summary = draft.summary.trim();
        if summary.chars().count() > 200 || summary.chars().any(char::is_control) {
            return Err(ValidationError::new("summary", "at most 200 characters on one line"));
        }
        let body = sanitize(&draft.body_html);
        if body.trim().is_empty() {
            return Err(ValidationError::new("body_html", "the body is empty once sanitised"));
        }
        if body.chars().count() > MAX_BODY {
            return Err(ValidationError::new("body_html", "at most 100000 characters"));
        }
        self.kind = draft.kind;
        self.title = title.to_string();
        self.summary = summary.to_string();
        self.body_html = body;
        self.department_id = draft.department_id;
        if draft.published && self.published_at.is_none() {
            self.published_at = Some(now);
        }
        self.published = draft.published;
        self.updated_at = now;
        Ok(())
    }
}

/// The body as it may be shown: headings, paragraphs, lists, emphasis, tables, quotes, images
/// and links (http, https and the platform's own paths only; links open with `noopener`).
/// Everything else (scripts, `on*` handlers, `style`, iframes, forms) is removed, keeping the text.
pub fn sanitize(html: &str) -> String {
    let tags: HashSet<&str> = [
        "p",
        "br",
        "h2",
        "h3",
        "h4",
        "strong",
        "b",
        "em",
        "i",
        "u",
        "s",
        "ul",
        "ol",
        "li",
        "blockquote",
        "a",
        "img",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "hr",
        "span",
        "sub",
        "sup",
    ]
    .into_iter()
    .collect();
    ammonia::Builder::new()
        .tags(tags)
        .tag_attributes(
            [("a", ["href", "title"].into_iter().collect()), ("img", ["src", "alt"].into_iter().collect())]
                .into_iter()
                .collect(),
        )
        .generic_attributes(HashSet::new())
        .url_schemes(["http", "https"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"))
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(body: &str) -> ArticleDraft {
        ArticleDraft {
            kind: ArticleKind::HealthEducation,
            title: " 秋季流感预防 ".into(),
            summary: "接种疫苗".into(),
            body_html: body.into(),
            department_id: None,
            published: false,
        }
    }

    #[test]
    fn sanitises_the_body_and_keeps_its_text() {
        let dirty = r#"<h2 onclick="steal()">预防</h2><script>alert(1)</script><p style="x">勤<b>洗手</b></p>
            <a href="javascript:alert(1)">坏链接</a><a href="https://example.org/a">好链接</a>
            <img src="x" onerror="alert(2)"><iframe src="https://evil.example"></iframe>"#;
        let clean = sanitize(dirty);
        for gone in ["script", "onclick", "onerror", "style", "javascript:", "iframe", "alert"] {
            assert!(!clean.contains(gone), "{gone} left in {clean}");
        }
        for kept in ["<h2>预防</h2>", "勤<b>洗手</b>", "坏链接", r#"href="https://example.org/a""#, "noopener"]
        {
            assert!(clean.contains(kept), "{kept} missing from {clean}");
        }
    }

    #[test]
    fn checks_fields_and_stamps_the_first_publication() {
        let now = Utc::now();
        let by = StaffId::new();
        let mut a = Article::new(draft("<p>接种疫苗</p>"), by, now).unwrap();
        assert_eq!((a.title.as_str(), a.published, a.published_at), ("秋季流感预防", false, None));
        assert_eq!(Article::new(draft("<script>x</script>"), by, now).unwrap_err().field, "body_html");
        let mut untitled = draft("<p>x</p>");
        untitled.title = " ".into();
        assert_eq!(Article::new(untitled, by, now).unwrap_err().field, "title");

        let later = now + chrono::Duration::hours(1);
        let mut up = draft("<p>接种疫苗</p>");
        up.published = true;
        a.revise(up.clone(), later).unwrap();
        assert_eq!(a.published_at, Some(later));
        let mut down = up.clone();
        down.published = false;
        a.revise(down, later + chrono::Duration::hours(1)).unwrap();
        a.revise(up, later + chrono::Duration::hours(2)).unwrap();
        assert_eq!(a.published_at, Some(later), "the first publication's time is kept");
    }
}
