//! The codec every generated stub uses: prost's, with a smaller buffer per call.
//!
//! tonic starts each call's encode buffer and each response's decode buffer at 8 KiB. The
//! messages a plugin exchanges are a few hundred bytes (a plugin-data update, a watch event), and
//! a burst keeps hundreds of calls in flight, so most of those 8 KiB were never written: a 10,000
//! request burst peaked with over a megabyte of them. Starting at 1 KiB, a buffer grows only for
//! the rare large message (a page of listed requests).

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Where a call's buffers start; they grow as a message needs.
const BUFFER_SIZE: usize = 1024;
/// tonic's default: how much a stream encodes before it yields to send.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost's codec with [`BUFFER_SIZE`] buffers.
#[derive(Debug, Clone, Copy)]
pub struct CompactCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for CompactCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for CompactCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}
