//! Every text frame a WebSocket receives goes through `ClientFrame::decode` (server/src/ws.rs,
//! `on_text`) and then through the parsers of the fields it carries. None of that may panic,
//! whatever the bytes; and a frame that decodes must encode to JSON that decodes to the same frame.
#![no_main]

use app::model::{Body, ClientId, Emoji};
use app::protocol::{ClientFrame, MAX_FRAME_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8 (tungstenite refuses others), and bigger ones are refused
    // before decoding.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > MAX_FRAME_BYTES {
        return;
    }
    let Ok(frame) = ClientFrame::decode(text) else {
        return;
    };
    let again = ClientFrame::decode(&frame.to_json()).expect("an encoded frame decodes");
    assert_eq!(again, frame, "round trip of {text:?}");
    match frame {
        ClientFrame::Send {
            client_id,
            body,
            attachment,
            ..
        } => {
            let _ = ClientId::parse(client_id);
            let _ = match attachment {
                Some(_) => Body::caption(body),
                None => Body::parse(body),
            };
        }
        ClientFrame::Edit {
            client_id, body, ..
        } => {
            let _ = ClientId::parse(client_id);
            let _ = Body::parse(body);
        }
        ClientFrame::Delete { client_id, .. } => {
            let _ = ClientId::parse(client_id);
        }
        ClientFrame::React {
            client_id, emoji, ..
        } => {
            let _ = ClientId::parse(client_id);
            let _ = Emoji::parse(emoji);
        }
        _ => {}
    }
});
