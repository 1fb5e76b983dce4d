//! News and health-education articles (INFO-5): staff with `content.write` write, revise,
//! publish, take down and delete them (each audited); anyone reads the published ones, no
//! sign-in needed, as the mini-program's home page does. Bodies are sanitised on input
//! (`hospital_domain::article::sanitize`), so every reader gets HTML that is safe to render.
//!
//! The articles are read from the store on each list: a hospital has hundreds, not millions,
//! and reading them keeps every node current without an invalidation channel.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hospital_domain::article::{Article, ArticleDraft, ArticleKind, ARTICLE_DOCS};
use hospital_domain::audit::Target;
use hospital_domain::{DepartmentId, Permission, ValidationError};
use hospital_store::{Docs, Versioned};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::validate::ListLimit;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_published))
        .routes(routes!(read_published))
        .routes(permit(Permission::ContentWrite, routes!(create, list_all)))
        .routes(permit(Permission::ContentWrite, routes!(revise, remove)))
}

fn docs(state: &AppState) -> Docs<'_, Article> {
    Docs::new(state.stores.data.as_ref(), ARTICLE_DOCS)
}

/// An article in a list: everything but the body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArticleSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub kind: ArticleKind,
    pub title: String,
    pub summary: String,
    pub department_id: Option<DepartmentId>,
    pub published_at: Option<chrono::DateTime<Utc>>,
}

impl From<&Article> for ArticleSummary {
    fn from(a: &Article) -> Self {
        ArticleSummary {
            id: a.id,
            kind: a.kind,
            title: a.title.clone(),
            summary: a.summary.clone(),
            department_id: a.department_id,
            published_at: a.published_at,
        }
    }
}

/// An article as staff see it, with the version a revision must name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffArticle {
    #[serde(flatten)]
    pub article: Article,
    pub version: u64,
}

impl From<Versioned<Article>> for StaffArticle {
    fn from(v: Versioned<Article>) -> Self {
        StaffArticle { article: v.value, version: v.version }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticleQuery {
    pub kind: Option<ArticleKind>,
    /// A department's articles only.
    pub department_id: Option<DepartmentId>,
    pub limit: Option<ListLimit>,
}

/// Published articles, newest first (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/articles", tag = "content", params(ArticleQuery),
    responses((status = 200, body = [ArticleSummary]), (status = 422, body = ErrorBody)))]
async fn list_published(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ArticleQuery>,
) -> ApiResult<ApiJson<Vec<ArticleSummary>>> {
    let mut found: Vec<Article> = docs(&state)
        .list()
        .await?
        .into_iter()
        .map(|v| v.value)
        .filter(|a| a.published)
        .filter(|a| q.kind.is_none_or(|k| a.kind == k))
        .filter(|a| q.department_id.is_none_or(|d| a.department_id == Some(d)))
        .collect();
    found.sort_by_key(|a| std::cmp::Reverse((a.published_at, a.id)));
    let limit = q.limit.map_or(20, ListLimit::get);
    Ok(ApiJson(found.iter().take(limit).map(ArticleSummary::from).collect()))
}

/// One published article with its sanitised body (404 for a draft or one taken down).
#[utoipa::path(get, path = "/api/v1/articles/{id}", tag = "content", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Article), (status = 404, body = ErrorBody)))]
async fn read_published(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<ApiJson<Article>> {
    match docs(&state).get(&id.to_string()).await? {
        Some(v) if v.value.published => Ok(ApiJson(v.value)),
        _ => Err(ApiError::not_found("article")),
    }
}

/// Writes an article (published at once if `published`). Audited (`article.create`).
#[utoipa::path(post, path = "/api/v1/admin/articles", tag = "content", security(("bearer" = [])),
    request_body = ArticleDraft,
    responses((status = 201, body = StaffArticle), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(draft): ApiJson<ArticleDraft>,
) -> ApiResult<(StatusCode, ApiJson<StaffArticle>)> {
    known_department(&state, draft.department_id)?;
    let a = Article::new(draft, audit.caller.staff_id, Utc::now())?;
    if !docs(&state).put(&a.id.to_string(), &a, 0).await? {
        return Err(ApiError::Internal("a fresh article id was taken".into()));
    }
    audit.record(audit.event("article.create", Target::new("article", a.id)?)?).await?;
    Ok((StatusCode::CREATED, ApiJson(StaffArticle { article: a, version: 1 })))
}

/// Every article, drafts included, newest change first.
#[utoipa::path(get, path = "/api/v1/admin/articles", tag = "content", security(("bearer" = [])),
    responses((status = 200, body = [StaffArticle]), (status = 403, body = ErrorBody)))]
async fn list_all(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<StaffArticle>>> {
    let mut all: Vec<StaffArticle> = docs(&state).list().await?.into_iter().map(StaffArticle::from).collect();
    all.sort_by_key(|a| std::cmp::Reverse((a.article.updated_at, a.article.id)));
    Ok(ApiJson(all))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revision {
    /// The version read: a revision of a changed article is refused (409 `version_conflict`),
    /// so two editors never silently overwrite each other.
    pub version: u64,
    /// Every field as it should now be.
    pub article: ArticleDraft,
}

/// Replaces an article's title, summary, body, department and publication. Audited
/// (`article.update`).
#[utoipa::path(put, path = "/api/v1/admin/articles/{id}", tag = "content", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)), request_body = Revision,
    responses((status = 200, body = StaffArticle), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn revise(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<Revision>,
) -> ApiResult<ApiJson<StaffArticle>> {
    let docs = docs(&state);
    let stored = docs.get(&id.to_string()).await?.ok_or_else(|| ApiError::not_found("article"))?;
    let conflict = || ApiError::Conflict {
        code: "version_conflict",
        message: "the article was changed meanwhile: read it again and redo the change".into(),
    };
    if stored.version != req.version {
        return Err(conflict());
    }
    known_department(&state, req.article.department_id)?;
    let mut a = stored.value;
    a.revise(req.article, Utc::now())?;
    if !docs.put(&id.to_string(), &a, stored.version).await? {
        return Err(conflict());
    }
    audit.record(audit.event("article.update", Target::new("article", id)?)?).await?;
    Ok(ApiJson(StaffArticle { article: a, version: stored.version + 1 }))
}

/// Deletes an article. Audited (`article.delete`).
#[utoipa::path(delete, path = "/api/v1/admin/articles/{id}", tag = "content", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(State(state): State<AppState>, audit: StaffAudit, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    if !docs(&state).delete(&id.to_string()).await? {
        return Err(ApiError::not_found("article"));
    }
    audit.record(audit.event("article.delete", Target::new("article", id)?)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn known_department(state: &AppState, department: Option<DepartmentId>) -> ApiResult<()> {
    match department {
        Some(d) if state.catalog().department(d).is_none() => {
            Err(ValidationError::new("department_id", "no such department").into())
        }
        _ => Ok(()),
    }
}
