//! A small DOM builder, which every page and component uses instead of `view!`.
//!
//! A Questionnaire is data, not code: its items are only known at run time, so the
//! renderer builds their elements directly and ties each changing part (a value,
//! an error, `hidden`) to the reactive graph with one [`RenderEffect`]. Compared
//! with `view!` trees, this cuts the wasm by more than half (each distinct `view!`
//! type is monomorphised into its own build/rebuild/drop code), and building a
//! 187-item form is a few thousand plain DOM calls. The pages and the other
//! components use the same few functions for the same reason: the download.
//!
//! Events are not bound per element in the questionnaire: the renderer listens
//! once on its root and reads `data-path`/`data-slot` from the element the event
//! came from.

use leptos::prelude::{Owner, RenderEffect, document, untrack};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;
use web_sys::{Element, HtmlElement, Node};

/// A new element. (Creating one of our fixed tag names cannot fail.)
pub(crate) fn el(tag: &str) -> Element {
    document().create_element(tag).expect("a valid tag name")
}

/// A new element with a class.
pub(crate) fn el_class(tag: &str, class: &str) -> Element {
    let element = el(tag);
    element.set_class_name(class);
    element
}

/// A new element appended to `parent`.
pub(crate) fn add(parent: &Element, tag: &str) -> Element {
    let element = el(tag);
    append(parent, &element);
    element
}

/// A new element with a class, appended to `parent`.
pub(crate) fn add_class(parent: &Element, tag: &str, class: &str) -> Element {
    let element = el_class(tag, class);
    append(parent, &element);
    element
}

/// A new element holding `content`, appended to `parent`.
pub(crate) fn add_text(parent: &Element, tag: &str, content: &str) -> Element {
    let element = add(parent, tag);
    text(&element, content);
    element
}

/// Sets an attribute.
pub(crate) fn set(element: &Element, name: &str, value: &str) {
    let _ = element.set_attribute(name, value);
}

/// Sets an attribute, or removes it for `None`.
pub(crate) fn set_opt(element: &Element, name: &str, value: Option<&str>) {
    match value {
        Some(value) => set(element, name, value),
        None => {
            let _ = element.remove_attribute(name);
        }
    }
}

/// Sets or removes a boolean attribute (`hidden`, `disabled`, `required`...).
pub(crate) fn flag(element: &Element, name: &str, on: bool) {
    let _ = element.toggle_attribute_with_force(name, on);
}

/// Appends text.
pub(crate) fn text(element: &Element, text: &str) {
    let _ = element.append_with_str_1(text);
}

/// Appends a child.
pub(crate) fn append(parent: &Element, child: &Element) {
    let _ = parent.append_child(child);
}

/// Runs `update` now and again whenever a signal it reads changes, for as long
/// as the current reactive owner lives.
pub(crate) fn bind(update: impl FnMut() + 'static) {
    bind_boxed(Box::new(update));
}

/// `bind`'s body, compiled once rather than once per closure type (hundreds of
/// bindings, each of which would copy the effect's machinery).
fn bind_boxed(mut update: Box<dyn FnMut()>) {
    let effect = RenderEffect::new(move |_: Option<()>| update());
    // The effect stops when dropped: keep it until its owner is cleaned up.
    let effect = send_wrapper::SendWrapper::new(effect);
    Owner::on_cleanup(move || drop(effect));
}

/// Appends a text that `content` keeps up to date.
pub(crate) fn bind_text(parent: &Element, content: impl Fn() -> String + 'static) {
    let node = document().create_text_node("");
    let _ = parent.append_child(&node);
    bind(move || node.set_data(&content()));
}

/// Listens for `event` on `element` while the current reactive owner lives.
pub(crate) fn on(element: &Element, event: &str, listener: impl FnMut(web_sys::Event) + 'static) {
    on_boxed(element, event, Box::new(listener));
}

/// `on`'s body, compiled once (as `bind_boxed`).
fn on_boxed(element: &Element, event: &str, listener: Box<dyn FnMut(web_sys::Event)>) {
    let closure = Closure::wrap(listener);
    let _ = element.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    let closure = send_wrapper::SendWrapper::new(closure);
    Owner::on_cleanup(move || drop(closure));
}

/// A place at the end of `parent` whose content `build` makes from what `key`
/// returns, again (the old content and its bindings gone) each time a signal that
/// `key` reads changes. `build` appends to the element it is given; what it
/// appends is moved into place, so the page gets no wrapper element. (The place
/// may itself move, with everything around it, into another region.)
pub(crate) fn region<K: 'static>(
    parent: &Element,
    key: impl Fn() -> K + 'static,
    build: impl Fn(K, &Element) + 'static,
) {
    // The work is in `region_of`, compiled once; only this small closure is
    // generic (each region's key type would otherwise copy all of it).
    let build = std::rc::Rc::new(build);
    region_of(
        parent,
        Box::new(move || {
            let key = key();
            let build = std::rc::Rc::clone(&build);
            Box::new(move |holder: &Element| build(key, holder))
        }),
    );
}

/// A builder for a region's content, made from its key.
type Builder = Box<dyn FnOnce(&Element)>;

fn region_of(parent: &Element, key: Box<dyn Fn() -> Builder>) {
    // What the region shows lies between two empty text nodes, so that whatever
    // a nested region adds later (a form that arrives after "Loading…") goes
    // with it when it is rebuilt.
    let start = document().create_text_node("");
    let end = document().create_text_node("");
    let _ = parent.append_child(&start);
    let _ = parent.append_child(&end);
    let end_node: Node = end.clone().into();
    let owner = Owner::current();
    let mut shown: Option<Owner> = None;
    bind(move || {
        let build = key();
        if let Some(old) = shown.take() {
            old.cleanup();
            while let Some(node) = start.next_sibling() {
                if node == end_node {
                    break;
                }
                if let Some(parent) = node.parent_node() {
                    let _ = parent.remove_child(&node);
                }
            }
        }
        let part = Part::build(owner.as_ref(), || {
            let holder = el("div");
            build(&holder);
            holder
        });
        let here = end.parent_node();
        while let Some(node) = part.element.first_child() {
            match &here {
                Some(here) => {
                    let _ = here.insert_before(&node, Some(&end));
                }
                None => {
                    let _ = part.element.remove_child(&node);
                }
            }
        }
        shown = Some(part.owner);
    });
}

/// A part of the page that comes and goes (an item switched on, a group
/// instance, an answer slot), built under its own reactive owner so that its
/// bindings and listeners go when it does.
pub(crate) struct Part {
    owner: Owner,
    element: Element,
}

impl Part {
    /// Builds a part with `build`, as a child of `parent` (the owner that was
    /// current when the binding that calls this was made: a binding re-runs later,
    /// when no owner is current). Reads in `build` do not subscribe the caller.
    pub(crate) fn build(parent: Option<&Owner>, build: impl FnOnce() -> Element) -> Self {
        let owner = parent.map_or_else(Owner::new, Owner::child);
        let element = owner.with(|| untrack(build));
        Part { owner, element }
    }

    /// The part's root element.
    pub(crate) fn element(&self) -> &Element {
        &self.element
    }

    /// Takes the part off the page and stops its bindings.
    pub(crate) fn remove(self) {
        self.owner.cleanup();
        self.element.remove();
    }
}

/// The element an event came from, if it is one.
pub(crate) fn target(event: &web_sys::Event) -> Option<Element> {
    event.target()?.dyn_into::<Element>().ok()
}

/// Moves keyboard focus to `element`.
pub(crate) fn focus(element: &Element) {
    if let Some(element) = element.dyn_ref::<HtmlElement>() {
        let _ = element.focus();
    }
}

/// Moves keyboard focus, once the page has been redrawn, to the element `id`
/// (after a re-render focus never falls to `<body>`).
pub(crate) fn focus_later(id: String) {
    leptos::prelude::request_animation_frame(move || {
        if let Some(found) = document().get_element_by_id(&id) {
            focus(&found);
        }
    });
}

/// The `value` of an input, select or text area.
pub(crate) fn value_of(element: &Element) -> String {
    if let Some(input) = element.dyn_ref::<web_sys::HtmlInputElement>() {
        input.value()
    } else if let Some(select) = element.dyn_ref::<web_sys::HtmlSelectElement>() {
        select.value()
    } else if let Some(area) = element.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        area.value()
    } else {
        String::new()
    }
}

/// Sets the `value` of an input, select or text area, unless it already shows
/// it (so the caret stays where the patient is typing).
pub(crate) fn set_value(element: &Element, value: &str) {
    if value_of(element) == value {
        return;
    }
    if let Some(input) = element.dyn_ref::<web_sys::HtmlInputElement>() {
        input.set_value(value);
    } else if let Some(select) = element.dyn_ref::<web_sys::HtmlSelectElement>() {
        select.set_value(value);
    } else if let Some(area) = element.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        area.set_value(value);
    }
}

/// Whether a check box or radio button is checked.
pub(crate) fn checked(element: &Element) -> bool {
    element
        .dyn_ref::<web_sys::HtmlInputElement>()
        .is_some_and(web_sys::HtmlInputElement::checked)
}

/// Checks or unchecks a check box or radio button.
pub(crate) fn set_checked(element: &Element, on: bool) {
    if let Some(input) = element.dyn_ref::<web_sys::HtmlInputElement>() {
        input.set_checked(on);
    }
}
