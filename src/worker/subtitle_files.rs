//! Sidecar subtitles for a presentation: the WebVTT and SRT files beside
//! its media file (`files::sidecars`), each opened through the sandbox and
//! the open-file cache, checked (WebVTT) or converted (SRT) once per file
//! version and cached, and described for the playlists. A file that is not
//! subtitles is left out with a log line naming it and the line at fault;
//! it never breaks the playlist.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;

use super::context::{Context, Reply};
use super::packaged_answer::{self, PackagedAnswer};
use crate::access::Grant;
use crate::files::OpenFile;
use crate::files::sidecars::{self, MAX_SIDECAR_BYTES, SubtitleFormat};
use crate::http::{Refusal, Status};
use crate::media::MediaError;
use crate::media::subtitles;
use crate::package::Kind;
use crate::package::language;
use crate::package::text::TextTrack;
use crate::package::{Output, PackageKey};
use crate::route::VirtualHost;

/// One subtitle rendition, ready to list and to send.
pub struct SubtitleFile {
    pub track: TextTrack,
    /// The WebVTT text as served (with HLS's timestamp map).
    pub vtt: Rc<[u8]>,
    pub opened: Rc<OpenFile>,
}

/// The subtitle renditions beside the media file `relative` of `folder`
/// (an index into `vhost.folders`), in a stable order.
pub fn load(
    context: &mut Context,
    vhost: &VirtualHost,
    folder: usize,
    relative: &[u8],
) -> Vec<SubtitleFile> {
    let Some(folder_dir) = vhost.folders.get(folder) else {
        return Vec::new();
    };
    let caches = &mut *context.caches;
    let mut loaded = Vec::new();
    for sidecar in sidecars::sidecars(folder_dir, relative) {
        let shown = || {
            format!(
                "{}/{}",
                folder_dir.path.display(),
                String::from_utf8_lossy(&sidecar.relative)
            )
        };
        let Ok(opened) = caches
            .open_files
            .open(vhost.index, &vhost.folders, &sidecar.relative)
        else {
            continue;
        };
        if opened.identity.size > MAX_SIDECAR_BYTES {
            log::warn!(
                "{}: over {MAX_SIDECAR_BYTES} bytes; left out of the presentation",
                shown()
            );
            continue;
        }
        let converted = caches
            .media
            .packaged(opened.identity, PackageKey::Subtitle, || {
                let mut bytes = vec![0; opened.identity.size as usize];
                std::os::unix::fs::FileExt::read_exact_at(&opened.handle, &mut bytes, 0)?;
                let text = match sidecar.format {
                    SubtitleFormat::WebVtt => subtitles::check_webvtt(&bytes),
                    SubtitleFormat::Srt => subtitles::srt_to_webvtt(&bytes),
                }
                .map_err(|e| MediaError::Broken(e.to_string()))?;
                let served = subtitles::with_timestamp_map(&text);
                Ok(Output::Document(Rc::from(
                    served.into_bytes().into_boxed_slice(),
                )))
            });
        let vtt = match converted {
            Ok(Output::Document(vtt)) => vtt,
            Ok(_) => continue,
            Err(e) => {
                log::warn!("{}: {e}; left out of the presentation", shown());
                continue;
            }
        };
        let tag = sidecar
            .language
            .clone()
            .unwrap_or_else(|| "und".to_string());
        let name = vhost
            .subtitle_names
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(&tag))
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| match &sidecar.language {
                Some(tag) => language::name_of(tag),
                None => "Subtitles".to_string(),
            });
        let default = vhost
            .subtitle_default
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&tag));
        loaded.push(SubtitleFile {
            track: TextTrack {
                language: tag,
                name,
                default,
            },
            vtt,
            opened,
        });
    }
    // At most one default: the first file of the host's language.
    let mut seen_default = false;
    for file in &mut loaded {
        if file.track.default {
            file.track.default = !seen_default;
            seen_default = true;
        }
    }
    loaded
}

/// A playlist's cache key beyond its cut: the query it carries and the
/// subtitle renditions it lists.
pub fn documents_hash(carried: &str, files: &[SubtitleFile]) -> u64 {
    let mut hasher = DefaultHasher::new();
    carried.hash(&mut hasher);
    for file in files {
        file.opened.identity.hash(&mut hasher);
        file.track.hash(&mut hasher);
    }
    hasher.finish()
}

/// Answers subtitle file `k` (from 1) of `files`: its WebVTT text, with the
/// sidecar file's validators.
pub fn answer(
    context: &mut Context,
    vhost: &VirtualHost,
    grant: &Grant,
    files: &[SubtitleFile],
    k: u32,
) -> Result<Reply, Refusal> {
    let file = (k as usize)
        .checked_sub(1)
        .and_then(|i| files.get(i))
        .ok_or_else(|| {
            Refusal::new(
                Status::NOT_FOUND,
                "This presentation has no such subtitle track.",
            )
        })?;
    let etag = format!("{}-vtt\"", file.opened.etag.trim_end_matches('"'));
    packaged_answer::answer(
        context,
        vhost,
        grant,
        PackagedAnswer {
            validators: &file.opened,
            source: &file.opened,
            etag: &etag,
            content_type: "text/vtt",
            kind: Kind::Segment,
            output: Output::Document(Rc::clone(&file.vtt)),
        },
    )
}
