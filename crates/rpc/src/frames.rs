//! Small responses in one write.
//!
//! h2 copies a DATA payload of under 1 KiB into its 16 KiB write buffer (on a connection that
//! does not do vectored writes: see `UnvectoredTcp` in [`crate::server`]), but a larger payload
//! is written out on its own before the next frame can be buffered. A unary response whose
//! message is 1–12 KiB (a 20-year trade balance is about 2 KiB) would leave in two writes: the
//! headers and message, then the trailers. [`SmallFrames`] cuts such a message into DATA frames
//! of 1000 bytes, so headers, message and trailers leave in one write. Larger messages (the long
//! range streams) pass as they are: they fill writes anyway. Not used under TLS (rustls does
//! vectored writes, so h2 would write each cut frame on its own).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::Status;

/// Size of the cut frames: h2 copies a DATA payload into its write buffer when it is under
/// `CHAIN_THRESHOLD_WITHOUT_VECTORED_IO` (1024 bytes).
pub const FRAME: usize = 1000;
/// Messages up to this size are cut into [`FRAME`]-sized frames (with headers and trailers
/// they stay under h2's 16 KiB write buffer).
pub const MAX_CUT: usize = 12 * 1024;

/// A response body whose data frames of `FRAME..=MAX_CUT` bytes are cut into `FRAME`-byte ones.
pub struct SmallFrames {
    inner: Body,
    rest: Bytes,
}

impl SmallFrames {
    /// Wraps a response body.
    pub fn new(inner: Body) -> SmallFrames {
        SmallFrames {
            inner,
            rest: Bytes::new(),
        }
    }

    /// A response with its body wrapped.
    pub fn wrap(response: http::Response<Body>) -> http::Response<Body> {
        response.map(|body| Body::new(SmallFrames::new(body)))
    }
}

impl HttpBody for SmallFrames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if !this.rest.is_empty() {
            let piece = this.rest.split_to(FRAME.min(this.rest.len()));
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        match frame.into_data() {
            Ok(mut data) if data.len() > FRAME && data.len() <= MAX_CUT => {
                let piece = data.split_to(FRAME);
                this.rest = data;
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            Ok(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Err(frame) => Poll::Ready(Some(Ok(frame))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        hint.set_lower(hint.lower() + rest);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn frames(payload: usize) -> (Vec<usize>, bool) {
        let data = Bytes::from(vec![7u8; payload]);
        let trailers = http::HeaderMap::new();
        let inner = http_body_util::StreamBody::new(tokio_stream::iter([
            Ok::<_, Status>(Frame::data(data)),
            Ok(Frame::trailers(trailers)),
        ]));
        let mut body = SmallFrames::new(Body::new(inner));
        let mut sizes = Vec::new();
        let mut saw_trailers = false;
        while let Some(frame) = body.frame().await {
            match frame.unwrap().into_data() {
                Ok(d) => sizes.push(d.len()),
                Err(f) => saw_trailers = f.is_trailers(),
            }
        }
        (sizes, saw_trailers)
    }

    #[tokio::test]
    async fn messages_of_1_to_12_kib_are_cut_into_small_frames_and_nothing_is_lost() {
        assert_eq!(frames(700).await, (vec![700], true));
        assert_eq!(frames(FRAME).await, (vec![FRAME], true));
        assert_eq!(frames(2500).await, (vec![1000, 1000, 500], true));
        let (sizes, trailers) = frames(MAX_CUT).await;
        assert!(trailers);
        assert!(sizes.iter().all(|&n| n <= FRAME));
        assert_eq!(sizes.iter().sum::<usize>(), MAX_CUT);
        assert_eq!(sizes.len(), MAX_CUT.div_ceil(FRAME));
        assert_eq!(frames(MAX_CUT + 1).await, (vec![MAX_CUT + 1], true));
    }
}
