//! Signed links of chat images, made as a message is read or a live frame goes out (never
//! stored, never on the bus: each node signs with its own clock). The HTTP routes
//! (`http::chat_images`), the patients' sockets and the agents' consoles all answer through here.

use hospital_domain::chat::console::ConsoleEvent;
use hospital_domain::chat::conversation::{ChatMessage, MessageBody};
use hospital_domain::live::PersonalEvent;
use serde::Serialize;

use crate::files::FileService;

/// A signed download link of an image, made when it was read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImageLink {
    /// `GET` this (path and query, relative to the API's base URL) for the image's bytes.
    pub url: String,
    /// When the link stops working, unix seconds; read the message again for a new one.
    pub expires: i64,
}

/// A message as a participant reads it: an image message carries a fresh `image_link`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkedMessage {
    #[serde(flatten)]
    pub message: ChatMessage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_link: Option<ImageLink>,
}

/// A new link of `key` (the configured lifetime).
pub fn link_of(files: &FileService, key: &str) -> ImageLink {
    let (url, expires) = files.link(key, None, None);
    ImageLink { url, expires }
}

/// The message with a link if it is an image.
pub fn linked(files: &FileService, message: ChatMessage) -> LinkedMessage {
    let image_link = match &message.body {
        MessageBody::Image(i) => Some(link_of(files, &i.key)),
        MessageBody::Text { .. } => None,
    };
    LinkedMessage { message, image_link }
}

/// A live frame's body: the event as it is, or (an image message) with `payload.image_link` set.
#[derive(Serialize)]
#[serde(untagged)]
pub enum LiveBody<'a, E: Serialize> {
    Plain(&'a E),
    Linked(serde_json::Value),
}

fn with_link<'a, E: Serialize>(files: Option<&FileService>, event: &'a E, m: &ChatMessage) -> LiveBody<'a, E> {
    let (Some(files), MessageBody::Image(i)) = (files, &m.body) else { return LiveBody::Plain(event) };
    match serde_json::to_value(event) {
        Ok(mut v) => {
            if let Some(payload) = v.get_mut("payload").and_then(serde_json::Value::as_object_mut) {
                let link = link_of(files, &i.key);
                payload.insert("image_link".into(), serde_json::json!({ "url": link.url, "expires": link.expires }));
            }
            LiveBody::Linked(v)
        }
        Err(_) => LiveBody::Plain(event),
    }
}

/// A personal event as the patient's socket sends it (a `chat_message` with an image gets its link).
pub fn personal<'a>(files: &FileService, event: &'a PersonalEvent) -> LiveBody<'a, PersonalEvent> {
    match event {
        PersonalEvent::ChatMessage(m) => with_link(Some(files), event, m),
        _ => LiveBody::Plain(event),
    }
}

/// A console event as the agent's console gets it (likewise).
pub fn console<'a>(files: Option<&FileService>, event: &'a ConsoleEvent) -> LiveBody<'a, ConsoleEvent> {
    match event {
        ConsoleEvent::ChatMessage(m) => with_link(files, event, m),
        _ => LiveBody::Plain(event),
    }
}
