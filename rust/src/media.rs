//! Media in a message (an image, a sound, a video, a document) as the GenAI conventions' parts,
//! whatever shape the SDK or framework took it in:
//!
//! ```text
//! {"type": "uri",  "modality": "image", "uri": "https://..."}                 a link
//! {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBOR..."}
//! {"type": "file", "modality": "image", "file_id": "file-abc"}                an uploaded file
//! ```
//!
//! A base64 data URL is inline data: a blob, its mime type kept and its content cut to the
//! content limit like any other text. The modality is the mime type's family when it is an
//! image, audio or video; otherwise what the caller's part said it was.

use crate::content::{truncate_str, write_json_str};

/// Where a media part's bytes are.
#[derive(Debug, PartialEq, Eq)]
pub enum Source<'a> {
    Uri(&'a str),
    Blob {
        mime_type: Option<&'a str>,
        content: &'a str,
    },
    File(&'a str),
}

impl<'a> Source<'a> {
    /// A URL as given: a data URL (`data:[<mime>][;...],<data>`) is a blob, anything else (a
    /// web or cloud-storage link, a local path) a link.
    pub fn of_url(url: &'a str) -> Self {
        let Some(rest) = url.strip_prefix("data:") else {
            return Source::Uri(url);
        };
        let Some((head, content)) = rest.split_once(',') else {
            return Source::Uri(url);
        };
        let mime = head.split(';').next().unwrap_or("");
        Source::Blob {
            mime_type: (!mime.is_empty()).then_some(mime),
            content,
        }
    }

    /// The text the part carries (what is counted when content is not captured).
    pub fn text(&self) -> &'a str {
        match self {
            Source::Uri(s) | Source::File(s) => s,
            Source::Blob { content, .. } => content,
        }
    }

    pub fn mime_type(&self) -> Option<&'a str> {
        match self {
            Source::Blob { mime_type, .. } => *mime_type,
            _ => None,
        }
    }

    /// The part's type, and the key that holds `text()`.
    pub fn type_and_key(&self) -> (&'static str, &'static str) {
        match self {
            Source::Uri(_) => ("uri", "uri"),
            Source::Blob { .. } => ("blob", "content"),
            Source::File(_) => ("file", "file_id"),
        }
    }
}

/// The part's modality: the mime type's family when it names one, else `kind`.
pub fn modality<'a>(kind: &'a str, mime_type: Option<&'a str>) -> &'a str {
    match mime_type
        .and_then(|m| m.split_once('/'))
        .map(|(family, _)| family)
    {
        Some(family @ ("image" | "audio" | "video")) => family,
        _ => kind,
    }
}

/// The mime type of audio given by its format name (OpenAI's `input_audio.format`).
pub fn audio_mime_type(format: &str) -> String {
    match format {
        "mp3" => "audio/mpeg".to_string(),
        other => format!("audio/{other}"),
    }
}

/// Appends the part's JSON object to `out`, every string cut to `max` characters (as every
/// string of a message is: a realistic limit never cuts a mime type).
pub fn write_part(out: &mut String, kind: &str, source: &Source<'_>, max: usize) {
    let mime_type = source.mime_type();
    let (type_name, key) = source.type_and_key();
    out.push_str("{\"type\":\"");
    out.push_str(type_name);
    out.push_str("\",\"modality\":");
    write_json_str(out, truncate_str(modality(kind, mime_type), max));
    if let Some(mime) = mime_type {
        out.push_str(",\"mime_type\":");
        write_json_str(out, truncate_str(mime, max));
    }
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    write_json_str(out, truncate_str(source.text(), max));
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(kind: &str, source: Source<'_>, max: usize) -> serde_json::Value {
        let mut out = String::new();
        write_part(&mut out, kind, &source, max);
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[test]
    fn a_link_is_a_uri_part() {
        assert_eq!(
            part("image", Source::of_url("https://x.test/cat.png"), 100),
            serde_json::json!({"type": "uri", "modality": "image", "uri": "https://x.test/cat.png"})
        );
    }

    #[test]
    fn a_data_url_is_a_blob_with_its_mime_type_and_cut_content() {
        let url = format!("data:image/png;base64,{}", "A".repeat(5000));
        assert_eq!(
            part("image", Source::of_url(&url), 8),
            serde_json::json!({"type": "blob", "modality": "image", "mime_type": "image/pn", "content": "AAAAAAAA"})
        );
        // A document's data URL keeps the caller's modality; its mime type says what it is.
        assert_eq!(
            part(
                "file",
                Source::of_url("data:application/pdf;base64,JVBER"),
                100
            ),
            serde_json::json!({"type": "blob", "modality": "file", "mime_type": "application/pdf", "content": "JVBER"})
        );
        // A file part holding audio is audio.
        assert_eq!(modality("file", Some("audio/wav")), "audio");
    }

    #[test]
    fn a_data_url_without_mime_type_or_comma() {
        assert_eq!(
            Source::of_url("data:;base64,QQ"),
            Source::Blob {
                mime_type: None,
                content: "QQ"
            }
        );
        assert_eq!(Source::of_url("data:broken"), Source::Uri("data:broken"));
    }

    #[test]
    fn an_uploaded_file_is_a_file_part() {
        assert_eq!(
            part("image", Source::File("file-abc"), 100),
            serde_json::json!({"type": "file", "modality": "image", "file_id": "file-abc"})
        );
    }

    #[test]
    fn audio_formats_name_their_mime_types() {
        assert_eq!(audio_mime_type("mp3"), "audio/mpeg");
        assert_eq!(audio_mime_type("wav"), "audio/wav");
    }
}
