//! The headers phase and the body of a packaged answer (a single file's
//! or a rendition set's playlist, manifest, init or media segment, or
//! subtitle file), shared by `packaged`, `packaged_set` and
//! `subtitle_files`.

use std::rc::Rc;

use super::context::{Context, Reply};
use super::file_head::{FileAnswer, Head, answer_head};
use super::representation::refusal_of;
use crate::access::Grant;
use crate::files::OpenFile;
use crate::http::{Refusal, Status};
use crate::media::MediaError;
use crate::package::{Kind, Output};
use crate::route::VirtualHost;
use crate::stats::StatsSlot;
use crate::stream::Stream;

/// A packaged answer ready to go out.
pub struct PackagedAnswer<'a> {
    /// The file whose Last-Modified the answer carries.
    pub validators: &'a Rc<OpenFile>,
    /// The file a media segment's bytes come from.
    pub source: &'a Rc<OpenFile>,
    pub etag: &'a str,
    pub content_type: &'static str,
    pub kind: Kind,
    pub output: Output,
}

/// The headers phase and the body of a packaged answer: a document from
/// memory (the Range asked of it), a media segment from its file. Counts it
/// by kind.
pub fn answer(
    context: &mut Context,
    vhost: &VirtualHost,
    grant: &Grant,
    answer: PackagedAnswer,
) -> Result<Reply, Refusal> {
    let slot = context.slot;
    let kind = answer.kind as usize;
    let size = match &answer.output {
        Output::Document(bytes) => bytes.len() as u64,
        Output::Segment(segment) => segment.len(),
        Output::Plan(_) | Output::Ladder(_) => 0,
    };
    StatsSlot::add(&slot.packaged[kind], 1);
    let head = answer_head(
        context,
        vhost,
        grant,
        FileAnswer {
            opened: answer.validators,
            etag: answer.etag,
            content_type: answer.content_type,
            size,
        },
    )?;
    let (status, first, end) = match head {
        Head::Done(status) => return Ok(context.bodiless(status)),
        Head::Body { status, first, end } => (status, first, end),
    };
    let keep_alive = context.keep_alive;
    match answer.output {
        Output::Document(bytes) => {
            context
                .out
                .extend_from_slice(&bytes[first as usize..end as usize]);
            StatsSlot::add(&slot.packaged_bytes[kind], end - first);
            Ok(Reply {
                status,
                body: None,
                keep_alive,
            })
        }
        Output::Segment(segment) => Ok(Reply {
            status,
            body: Some(Stream::segment(
                Rc::clone(answer.source),
                segment,
                first,
                end,
                &vhost.pacing,
            )),
            keep_alive,
        }),
        Output::Plan(_) | Output::Ladder(_) => Err(Refusal::new(
            Status::INTERNAL_ERROR,
            "The presentation could not be built.",
        )),
    }
}

/// Logs what a packaging failure's status calls for (a damaged file as an
/// error, a set that does not fit as a warning) and returns its refusal.
pub fn logged_refusal(what: &dyn std::fmt::Display, e: &MediaError) -> Refusal {
    let refusal = refusal_of(e);
    if refusal.status == Status::INTERNAL_ERROR {
        log::error!("{what}: {e}");
    } else if refusal.status == Status::CONFLICT {
        log::warn!("{what}: {e}");
    }
    refusal
}

/// What a playlist carries into every URI it lists: the request's own
/// arguments (a signed link's token, the clip), as "" or "?…".
pub fn carried_query(query: Option<&str>) -> String {
    query
        .filter(|q| !q.is_empty())
        .map_or_else(String::new, |q| format!("?{q}"))
}
