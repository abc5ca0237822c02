//! What a role runs: `Runtime` (its `Environment` and `EntryPoint`) and
//! `Startup` tasks, with the command-line and environment-variable checks
//! they share.

use super::named_children;
use crate::csdef::*;
use crate::diagnostic::Code;
use crate::read::Cx;
use crate::xml::Element;
use crate::xpath::RoleInstanceXPath;

fn execution_context(
    cx: &mut Cx<'_>,
    a: &mut crate::read::Attrs<'_>,
    element: &str,
) -> ExecutionContext {
    a.take("executionContext")
        .and_then(|v| {
            cx.choice(
                v,
                &[
                    ("limited", ExecutionContext::Limited),
                    ("elevated", ExecutionContext::Elevated),
                ],
                element,
            )
        })
        .map(|v| v.value)
        .unwrap_or_default()
}

pub(super) fn runtime(cx: &mut Cx<'_>, el: &Element) -> Runtime {
    let mut a = cx.attrs(el);
    let execution_context = execution_context(cx, &mut a, &el.name);
    a.finish(cx);
    let mut rt = Runtime {
        execution_context,
        environment: Vec::new(),
        entry_point: None,
        span: el.span,
    };
    let (mut env_seen, mut ep_seen) = (None, None);
    for child in cx.children(el) {
        match child.name.as_str() {
            "Environment" => {
                if cx.once(&mut env_seen, child, &el.name) {
                    rt.environment = environment(cx, child);
                }
            }
            "EntryPoint" => {
                if !cx.once(&mut ep_seen, child, &el.name) {
                    continue;
                }
                cx.attrs(child).finish(cx);
                let mut points = cx.children(child).into_iter();
                let Some(p) = points.next() else {
                    cx.emit(
                        Code::E0007,
                        child.span,
                        "`EntryPoint` has neither `ProgramEntryPoint` nor `NetFxEntryPoint`",
                    );
                    continue;
                };
                for extra in points {
                    cx.emit(
                        Code::E0009,
                        extra.span,
                        "`EntryPoint` holds more than one entry point",
                    );
                }
                rt.entry_point = entry_point(cx, p, &child.name);
            }
            _ => cx.unknown_element(child, &el.name),
        }
    }
    rt
}

fn entry_point(cx: &mut Cx<'_>, p: &Element, parent: &str) -> Option<EntryPoint> {
    let mut a = cx.attrs(p);
    match p.name.as_str() {
        "ProgramEntryPoint" => {
            let command_line = cx.required(&mut a, "commandLine");
            let ready = match a.take("setReadyOnProcessStart") {
                Some(v) => cx.boolean(v, &p.name).is_some_and(|v| v.value),
                None => {
                    cx.missing(p, "setReadyOnProcessStart");
                    false
                }
            };
            a.finish(cx);
            for c in cx.children(p) {
                cx.unknown_element(c, &p.name);
            }
            let command_line = command_line?;
            check_command_line(cx, &command_line, "ProgramEntryPoint");
            Some(EntryPoint::Program(ProgramEntryPoint {
                command_line,
                set_ready_on_process_start: ready,
                span: p.span,
            }))
        }
        "NetFxEntryPoint" => {
            let assembly_name = cx.required(&mut a, "assemblyName");
            let target_framework_version = cx.required(&mut a, "targetFrameworkVersion");
            a.finish(cx);
            cx.emit(
                Code::W0301,
                p.span,
                "`NetFxEntryPoint` runs a .NET Framework assembly, which cannot run on Linux hosts",
            )
            .help = Some(
                "use `<ProgramEntryPoint commandLine=\"...\" setReadyOnProcessStart=\"true\" />` with a Linux command line (for example `dotnet MyRole.dll` built for .NET on Linux)".into(),
            );
            Some(EntryPoint::NetFx(NetFxEntryPoint {
                assembly_name: assembly_name?,
                target_framework_version: target_framework_version?,
                span: p.span,
            }))
        }
        _ => {
            cx.unknown_element(p, parent);
            None
        }
    }
}

/// Empty command lines are errors; Windows programs are warned about.
fn check_command_line(cx: &mut Cx<'_>, cmd: &Located<String>, what: &str) {
    let trimmed = cmd.value.trim();
    if trimmed.is_empty() {
        cx.emit(
            Code::E0207,
            cmd.span,
            format!("the `commandLine` of `{what}` is empty"),
        );
        return;
    }
    let program = trimmed
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    let lower = program.to_ascii_lowercase();
    let windows = [".cmd", ".bat", ".exe", ".ps1"]
        .iter()
        .find(|ext| lower.ends_with(*ext));
    if let Some(ext) = windows {
        cx.emit(
            Code::W0305,
            cmd.span,
            format!("`{program}` is a Windows program ({ext}); weft runs command lines with `/bin/sh -c` on Linux"),
        )
        .help = Some("ship a Linux equivalent (for example a shell script) and name it in `commandLine`".into());
    }
}

fn environment(cx: &mut Cx<'_>, el: &Element) -> Vec<EnvironmentVariable> {
    cx.attrs(el).finish(cx);
    let mut vars: Vec<EnvironmentVariable> = Vec::new();
    for v in named_children(cx, el, "Variable") {
        let mut a = cx.attrs(v);
        let name = cx.required_name(&mut a, "name");
        let literal = a.take_string("value");
        a.finish(cx);
        let mut xpath = None;
        for c in cx.children(v) {
            if c.name != "RoleInstanceValue" {
                cx.unknown_element(c, &v.name);
                continue;
            }
            let mut a = cx.attrs(c);
            let x = cx.required(&mut a, "xpath");
            a.finish(cx);
            if xpath.is_some() {
                cx.emit(
                    Code::E0009,
                    c.span,
                    "`Variable` holds more than one `RoleInstanceValue`",
                );
            } else {
                xpath = x;
            }
        }
        let Some(name) = name else { continue };
        let value = match (literal, xpath) {
            (Some(l), None) => VariableValue::Literal(l),
            (None, Some(x)) => match RoleInstanceXPath::parse(&x) {
                Some(p) => VariableValue::RoleInstance(Located::new(p, x.span)),
                None => {
                    cx.emit(Code::W0204, x.span, format!("`{}` is not a documented RoleInstanceValue xpath; weft sets `{}` to an empty string", x.value, name.value))
                        .help = Some("see Azure's \"xPath values\" list: /RoleEnvironment/Deployment/@id, /RoleEnvironment/CurrentInstance/@id, .../Endpoints/Endpoint[@name='X']/@port, ...".into());
                    VariableValue::UnknownXPath(x)
                }
            },
            (Some(l), Some(_)) => {
                cx.emit(
                    Code::E0205,
                    name.span,
                    format!(
                        "variable `{}` has both a `value` and a `RoleInstanceValue`",
                        name.value
                    ),
                )
                .help = Some("keep one of them".into());
                VariableValue::Literal(l)
            }
            (None, None) => {
                cx.emit(
                    Code::E0205,
                    name.span,
                    format!(
                        "variable `{}` has neither a `value` nor a `RoleInstanceValue`",
                        name.value
                    ),
                )
                .help = Some(
                    "add `value=\"...\"` or a `<RoleInstanceValue xpath=\"...\" />` child".into(),
                );
                continue;
            }
        };
        if let Some(first) = vars.iter().find(|e| e.name.value == name.value) {
            let line = cx.sink.source.position(first.name.span.start).line;
            cx.emit(
                Code::E0206,
                name.span,
                format!(
                    "variable `{}` is already defined on line {line}",
                    name.value
                ),
            );
        }
        vars.push(EnvironmentVariable { name, value });
    }
    vars
}

pub(super) fn task(cx: &mut Cx<'_>, el: &Element) -> Option<StartupTask> {
    let mut a = cx.attrs(el);
    let command_line = cx.required(&mut a, "commandLine");
    let execution_context = execution_context(cx, &mut a, &el.name);
    let task_type = a
        .take("taskType")
        .and_then(|v| {
            cx.choice(
                v,
                &[
                    ("simple", TaskType::Simple),
                    ("background", TaskType::Background),
                    ("foreground", TaskType::Foreground),
                ],
                &el.name,
            )
        })
        .map(|v| v.value)
        .unwrap_or_default();
    a.finish(cx);
    let mut environment_vars = Vec::new();
    let mut seen = None;
    for c in cx.children(el) {
        if c.name == "Environment" {
            if cx.once(&mut seen, c, &el.name) {
                environment_vars = environment(cx, c);
            }
        } else {
            cx.unknown_element(c, &el.name);
        }
    }
    let command_line = command_line?;
    check_command_line(cx, &command_line, "Task");
    Some(StartupTask {
        command_line,
        execution_context,
        task_type,
        environment: environment_vars,
        span: el.span,
    })
}
