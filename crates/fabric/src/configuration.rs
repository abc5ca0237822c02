//! The deployment's service configuration as text, kept with the
//! deployment as Azure keeps it (Get Deployment returns it): replaced by a
//! configuration change or an upgrade, restored by a rollback, and edited
//! by the fabric itself where Azure does — Delete Role Instances lowers the
//! role's `Instances count`. Pure.

use weft_model::ServiceConfiguration;

/// `text` with role `role`'s `<Instances count="…">` set to `count`,
/// everything else byte for byte as it was; `None` when the text does not
/// parse or the count is not written plainly where the parser says.
pub fn with_instance_count(text: &str, role: &str, count: usize) -> Option<String> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (parsed, _) = ServiceConfiguration::parse("ServiceConfiguration.cscfg", body.as_bytes());
    let instances = parsed?.role(role)?.instances.clone()?;
    let span = instances.span;
    let written = body.get(span.start..span.end)?;
    if written.trim() != instances.value.to_string() {
        return None;
    }
    let offset = text.len() - body.len();
    Some(format!(
        "{}{count}{}",
        &text[..offset + span.start],
        &text[offset + span.end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSCFG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<ServiceConfiguration serviceName="hello" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration">
  <Role name="Web">
    <Instances count="3" />
    <ConfigurationSettings><Setting name="Greeting" value="count=&quot;3&quot;" /></ConfigurationSettings>
  </Role>
  <Role name="Worker">
    <Instances   count = '12'/>
  </Role>
</ServiceConfiguration>
"#;

    #[test]
    fn only_the_named_roles_count_changes() {
        let web = with_instance_count(CSCFG, "Web", 2).unwrap();
        assert_eq!(
            web,
            CSCFG.replace("<Instances count=\"3\" />", "<Instances count=\"2\" />")
        );
        let worker = with_instance_count(CSCFG, "Worker", 7).unwrap();
        assert_eq!(worker, CSCFG.replace("count = '12'", "count = '7'"));
        let bom = format!("\u{feff}{CSCFG}");
        assert_eq!(
            with_instance_count(&bom, "Web", 1).unwrap(),
            format!(
                "\u{feff}{}",
                CSCFG.replace("count=\"3\" />", "count=\"1\" />")
            )
        );
    }

    #[test]
    fn what_cannot_be_edited_in_place_is_none() {
        assert_eq!(with_instance_count(CSCFG, "Nope", 1), None);
        assert_eq!(with_instance_count("<not xml", "Web", 1), None);
    }
}
