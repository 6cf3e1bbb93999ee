//! Uploading one file to `POST /api/attachments` with progress and a way to cancel it.
//!
//! `XMLHttpRequest`, not `fetch`: only XHR reports upload progress (`fetch` reports nothing until
//! the response), and `abort()` cancels at any point. The file is the request's body as it is
//! (no multipart), its name in the query; the server sniffs the type itself. The answer is the
//! attachment's metadata, which a `send` then posts (see `ui::conversation`'s composer).
//!
//! Owns the request and its callbacks only; what to show is the caller's.

use crate::api::ApiError;
use crate::model::Attachment;
use leptos::wasm_bindgen::closure::Closure;
use leptos::wasm_bindgen::JsCast;
use web_sys::{File, ProgressEvent, XmlHttpRequest};

/// The first file of a file input's selection (the picker).
pub fn picked_file(ev: &web_sys::Event) -> Option<File> {
    let input = ev.target()?.dyn_into::<web_sys::HtmlInputElement>().ok()?;
    let file = input.files()?.get(0);
    // Cleared, so that picking the same file again fires `change` again.
    input.set_value("");
    file
}

/// The first file dropped on the composer.
pub fn dropped_file(ev: &web_sys::DragEvent) -> Option<File> {
    ev.data_transfer()?.files()?.get(0)
}

/// Whether a drag carries files (only then does the composer accept the drop).
pub fn drags_files(ev: &web_sys::DragEvent) -> bool {
    ev.data_transfer().is_some_and(|d| {
        d.types()
            .iter()
            .any(|t| t.as_string().as_deref() == Some("Files"))
    })
}

/// The first file pasted (a screenshot from the clipboard, a copied file), if any.
pub fn pasted_file(ev: &web_sys::ClipboardEvent) -> Option<File> {
    ev.clipboard_data()?.files()?.get(0)
}

/// An upload under way. Dropping it does not cancel it; [`Upload::cancel`] does.
pub struct Upload {
    xhr: XmlHttpRequest,
    // Kept alive as long as the request may call them.
    _callbacks: Vec<Closure<dyn FnMut(ProgressEvent)>>,
}

impl Upload {
    /// Starts uploading `file`. `progress` gets the fraction sent (0–1) as it goes; `done` is
    /// called once, with the attachment or what went wrong (not after [`Upload::cancel`]).
    pub fn start(
        file: &File,
        progress: impl Fn(f64) + 'static,
        done: impl Fn(Result<Attachment, String>) + 'static,
    ) -> Result<Upload, String> {
        let xhr = XmlHttpRequest::new().map_err(|_| "This browser cannot upload files.")?;
        let name = String::from(js_sys::encode_uri_component(&file.name()));
        xhr.open("POST", &format!("/api/attachments?name={name}"))
            .map_err(|_| "The upload could not start.")?;
        let done = std::rc::Rc::new(done);
        let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                progress(e.loaded() / e.total());
            }
        });
        let on_load = {
            let (xhr, done) = (xhr.clone(), done.clone());
            Closure::<dyn FnMut(ProgressEvent)>::new(move |_: ProgressEvent| {
                let status = xhr.status().unwrap_or(0);
                let text = xhr.response_text().ok().flatten().unwrap_or_default();
                (*done)(if status == 200 {
                    serde_json::from_str::<Attachment>(&text)
                        .map_err(|_| "The server's answer to the upload was unreadable.".into())
                } else {
                    Err(serde_json::from_str::<ApiError>(&text)
                        .map(|e| e.message)
                        .unwrap_or_else(|_| format!("The upload failed ({status}).")))
                });
            })
        };
        let on_error = Closure::<dyn FnMut(ProgressEvent)>::new(move |_: ProgressEvent| {
            (*done)(Err(
                "The upload did not reach the server; check the connection and try again.".into(),
            ))
        });
        if let Ok(upload) = xhr.upload() {
            upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        }
        xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
        xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        xhr.send_with_opt_blob(Some(file))
            .map_err(|_| "The upload could not start.")?;
        Ok(Upload {
            xhr,
            _callbacks: vec![on_progress, on_load, on_error],
        })
    }

    /// Stops the upload; nothing is posted (a file the server already stored is swept later).
    pub fn cancel(&self) {
        self.xhr.set_onload(None);
        self.xhr.set_onerror(None);
        let _ = self.xhr.abort();
    }
}
