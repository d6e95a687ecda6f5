//! The app's routes, and moving between them without reloading.
//!
//! The app has a handful of fixed routes, so this is a closed enum parsed from the
//! path rather than `leptos_router`: the router crate and its generic route views
//! cost about 60 kB of wasm, a third of our size budget (`cargo xtask size`).
//! Same-origin links are ordinary `<a href>`s: one click listener on the document
//! turns them into history pushes, and the back button (`popstate`) is followed.

use leptos::prelude::*;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

/// A page of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Landing,
    Intake,
    Kiosk,
    /// `/i`: a patient's invitation (its token in the fragment).
    Invite,
    /// `/preview/{questionnaire-id}`.
    Preview(String),
    NotFound,
}

impl Route {
    /// The route for a URL path.
    pub(crate) fn parse(path: &str) -> Self {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let first = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        match (first, rest) {
            ("", "") => Route::Landing,
            ("intake", _) => Route::Intake,
            ("kiosk", "") => Route::Kiosk,
            ("i", "") => Route::Invite,
            ("preview", id) if !id.is_empty() && !id.contains('/') => Route::Preview(decode(id)),
            _ => Route::NotFound,
        }
    }
}

/// `%xx`-decodes a path segment (ids are plain, but a pasted link may be escaped).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// The current route, as a signal. Call once, at the top of the app.
pub(crate) fn current_route() -> ReadSignal<Route> {
    follow(
        |path| (!is_staff_path(path) && path != "/kiosk").then(|| Route::parse(path)),
        Route::NotFound,
    )
}

/// Whether `path` belongs to the staff app (`/staff`, `/staff/…`), a page of its
/// own (`frontend/staff.html`) that the patient app never shows.
pub(crate) fn is_staff_path(path: &str) -> bool {
    path == "/staff" || path.starts_with("/staff/")
}

/// The route of the current path as a signal, following same-origin links and the
/// back button. `parse` says which paths are this app's: a link elsewhere (`None`)
/// is left to the browser, which loads that app's page; `fallback` is the route
/// if the page itself is not one of them.
pub(crate) fn follow<R: PartialEq + Send + Sync + 'static>(
    parse: fn(&str) -> Option<R>,
    fallback: R,
) -> ReadSignal<R> {
    let path = || window().location().pathname().unwrap_or_default();
    let (route, set_route) = signal(parse(&path()).unwrap_or(fallback));

    // A fragment link (the skip link, an error summary's) fires `popstate` on
    // the same page: redrawing it would empty every answer and drop the focus.
    let on_pop = Closure::<dyn Fn()>::new(move || match parse(&path()) {
        Some(now) if route.with_untracked(|r| r == &now) => {}
        Some(route) => set_route.set(route),
        None => {
            let _ = window().location().reload();
        }
    });
    let _ = window().add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
    on_pop.forget();

    let on_click =
        Closure::<dyn Fn(web_sys::MouseEvent)>::new(move |event: web_sys::MouseEvent| {
            let Some(href) = internal_link(&event) else {
                return;
            };
            if let Some(route) = parse(&href) {
                event.prevent_default();
                let _ = window().history().and_then(|h| {
                    h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
                });
                set_route.set(route);
                window().scroll_to_with_x_and_y(0.0, 0.0);
            }
        });
    let _ = document().add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
    on_click.forget();
    route
}

/// Goes to `href` (a path of the app that follows it) as a link would.
pub(crate) fn navigate(href: &str) {
    let _ = window()
        .history()
        .and_then(|h| h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(href)));
    // The app's `popstate` listener reads the new path.
    if let Ok(event) = web_sys::Event::new("popstate") {
        let _ = window().dispatch_event(&event);
    }
}

/// The path of a plain left click on a same-origin link, which the app handles
/// itself; `None` for anything the browser should do (new tab, download, other
/// site, in-page anchor).
fn internal_link(event: &web_sys::MouseEvent) -> Option<String> {
    if event.default_prevented()
        || event.button() != 0
        || event.ctrl_key()
        || event.meta_key()
        || event.shift_key()
        || event.alt_key()
    {
        return None;
    }
    let target = event.target()?.dyn_into::<web_sys::Element>().ok()?;
    let anchor = target.closest("a[href]").ok()??;
    if anchor.has_attribute("download") || anchor.get_attribute("target").is_some() {
        return None;
    }
    let href = anchor.get_attribute("href")?;
    (href.starts_with('/') && !href.starts_with("//")).then_some(href)
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn paths_map_to_routes() {
        let cases = [
            ("/", Route::Landing),
            ("", Route::Landing),
            ("/intake", Route::Intake),
            ("/intake/abc", Route::Intake),
            ("/kiosk", Route::Kiosk),
            ("/kiosk/x", Route::NotFound),
            ("/i", Route::Invite),
            ("/i/x", Route::NotFound),
            ("/preview/phq-9.v2", Route::Preview("phq-9.v2".into())),
            ("/preview/a%20b", Route::Preview("a b".into())),
            ("/preview/a%2", Route::Preview("a%2".into())),
            ("/preview/", Route::NotFound),
            ("/preview/a/b", Route::NotFound),
            ("/nope", Route::NotFound),
        ];
        for (path, route) in cases {
            assert_eq!(Route::parse(path), route, "{path}");
        }
    }
}
