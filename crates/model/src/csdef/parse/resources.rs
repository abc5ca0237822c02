//! What a role declares besides code and endpoints: `LocalResources`,
//! `Certificates`, `Imports`, IIS `Sites` and `Contents`.

use super::named_children;
use crate::csdef::*;
use crate::diagnostic::Code;
use crate::read::Cx;
use crate::xml::Element;

pub(super) fn certificate(cx: &mut Cx<'_>, c: &Element) -> Option<CertificateDecl> {
    let mut a = cx.attrs(c);
    let name = cx.required_name(&mut a, "name");
    let store_location = match a.take("storeLocation") {
        Some(v) => cx.choice(
            v,
            &[
                ("LocalMachine", StoreLocation::LocalMachine),
                ("CurrentUser", StoreLocation::CurrentUser),
            ],
            &c.name,
        ),
        None => {
            cx.missing(c, "storeLocation");
            None
        }
    };
    let store_name = cx.required_name(&mut a, "storeName");
    let permission_level = a
        .take("permissionLevel")
        .and_then(|v| {
            cx.choice(
                v,
                &[
                    ("limitedOrElevated", PermissionLevel::LimitedOrElevated),
                    ("elevated", PermissionLevel::Elevated),
                ],
                &c.name,
            )
        })
        .map(|v| v.value)
        .unwrap_or_default();
    a.finish(cx);
    Some(CertificateDecl {
        name: name?,
        store_location: store_location?.value,
        store_name: store_name?.value,
        permission_level,
        span: c.span,
    })
}

pub(super) fn import(cx: &mut Cx<'_>, i: &Element) -> Option<Import> {
    let mut a = cx.attrs(i);
    let module = cx.required_name(&mut a, "moduleName");
    a.finish(cx);
    let m = module?;
    let module = ImportModule::parse(&m);
    let d = cx.emit(
        Code::W0304,
        m.span,
        format!(
            "import `{}` is a Windows Azure plugin; it is ignored on Linux hosts",
            module.name()
        ),
    );
    d.help = Some(module.linux_alternative().to_owned());
    Some(Import {
        module,
        span: i.span,
    })
}

pub(super) fn local_storage(cx: &mut Cx<'_>, el: &Element) -> Option<LocalStorage> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let size_in_mb = a.take("sizeInMB").and_then(|v| cx.uint(v, &el.name));
    let clean = a
        .take("cleanOnRoleRecycle")
        .and_then(|v| cx.boolean(v, &el.name))
        .is_none_or(|v| v.value);
    a.finish(cx);
    for c in cx.children(el) {
        cx.unknown_element(c, &el.name);
    }
    Some(LocalStorage {
        name: name?,
        size_in_mb,
        clean_on_role_recycle: clean,
        span: el.span,
    })
}

/// The `Site`s of a `Sites` element, warned about once: weft does not run IIS.
pub(super) fn sites(cx: &mut Cx<'_>, el: &Element) -> Vec<Site> {
    let mut sites = Vec::new();
    for s in named_children(cx, el, "Site") {
        sites.extend(site(cx, s));
    }
    if !sites.is_empty() {
        let n = sites.len();
        cx.emit(
            Code::W0302,
            el.span,
            format!("{n} IIS site{} declared here {} not run on Linux hosts", if n == 1 { "" } else { "s" }, if n == 1 { "is" } else { "are" }),
        )
        .help = Some("run your own HTTP server from a `ProgramEntryPoint`, listening on the endpoint's port (from a RoleInstanceValue environment variable or the runtime endpoint)".into());
    }
    sites
}

fn site(cx: &mut Cx<'_>, el: &Element) -> Option<Site> {
    let mut a = cx.attrs(el);
    let name = cx.required_name(&mut a, "name");
    let physical_directory = a.take_string("physicalDirectory");
    a.finish(cx);
    let mut bindings = Vec::new();
    for c in cx.children(el) {
        match c.name.as_str() {
            "Bindings" => {
                for b in named_children(cx, c, "Binding") {
                    let mut a = cx.attrs(b);
                    let bname = a.take_string("name");
                    let endpoint_name = cx.required_name(&mut a, "endpointName");
                    let host_header = a.take_string("hostHeader");
                    a.finish(cx);
                    if let Some(endpoint_name) = endpoint_name {
                        bindings.push(Binding {
                            name: bname,
                            endpoint_name,
                            host_header,
                            span: b.span,
                        });
                    }
                }
            }
            // IIS applications, virtual directories and the like are kept
            // out of the model: weft does not run IIS.
            "VirtualApplication" | "VirtualDirectory" | "Properties" => {}
            _ => cx.unknown_element(c, &el.name),
        }
    }
    Some(Site {
        name: name?,
        physical_directory,
        bindings,
        span: el.span,
    })
}

pub(super) fn content(cx: &mut Cx<'_>, el: &Element) -> Option<Content> {
    let mut a = cx.attrs(el);
    let destination = cx.required(&mut a, "destination");
    a.finish(cx);
    let mut source_directory = None;
    for c in cx.children(el) {
        if c.name == "SourceDirectory" {
            let mut a = cx.attrs(c);
            source_directory = cx.required(&mut a, "path");
            a.finish(cx);
        } else {
            cx.unknown_element(c, &el.name);
        }
    }
    Some(Content {
        destination: destination?,
        source_directory,
        span: el.span,
    })
}
