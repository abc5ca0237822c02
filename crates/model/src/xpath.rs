//! `RoleInstanceValue xpath="..."`: the runtime values Azure documents for
//! environment variables ("xPath values in Azure"), parsed into a typed
//! reference the agent resolves for each instance.

/// A documented RoleInstanceValue path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoleInstanceXPath {
    /// `/RoleEnvironment/Deployment/@emulated`
    Emulated,
    /// `/RoleEnvironment/Deployment/@id`
    DeploymentId,
    /// `/RoleEnvironment/CurrentInstance/@id`
    InstanceId,
    /// `/RoleEnvironment/CurrentInstance/@roleName`
    RoleName,
    /// `/RoleEnvironment/CurrentInstance/@updateDomain`
    UpdateDomain,
    /// `/RoleEnvironment/CurrentInstance/@faultDomain`
    FaultDomain,
    /// `.../ConfigurationSettings/ConfigurationSetting[@name='X']/@value`
    ConfigurationSetting(String),
    /// `.../LocalResources/LocalResource[@name='X']/@path`
    LocalResourcePath(String),
    /// `.../LocalResources/LocalResource[@name='X']/@sizeInMB`
    LocalResourceSize(String),
    /// `.../Endpoints/Endpoint[@name='X']/@address`
    EndpointAddress(String),
    /// `.../Endpoints/Endpoint[@name='X']/@port`
    EndpointPort(String),
    /// `.../Endpoints/Endpoint[@name='X']/@protocol`
    EndpointProtocol(String),
}

const INSTANCE: &str = "/RoleEnvironment/CurrentInstance/";

impl RoleInstanceXPath {
    /// Parses a documented path; `None` for anything else.
    pub fn parse(xpath: &str) -> Option<Self> {
        let xpath = xpath.trim();
        match xpath {
            "/RoleEnvironment/Deployment/@emulated" => return Some(Self::Emulated),
            "/RoleEnvironment/Deployment/@id" => return Some(Self::DeploymentId),
            "/RoleEnvironment/CurrentInstance/@id" => return Some(Self::InstanceId),
            "/RoleEnvironment/CurrentInstance/@roleName" => return Some(Self::RoleName),
            "/RoleEnvironment/CurrentInstance/@updateDomain" => return Some(Self::UpdateDomain),
            "/RoleEnvironment/CurrentInstance/@faultDomain" => return Some(Self::FaultDomain),
            _ => {}
        }
        let rest = xpath.strip_prefix(INSTANCE)?;
        let (collection, rest) = rest.split_once('/')?;
        let (item, rest) = rest.split_once('[')?;
        let (predicate, attr) = rest.split_once(']')?;
        let name = named(predicate)?;
        let attr = attr.strip_prefix("/@")?;
        match (collection, item, attr) {
            ("ConfigurationSettings", "ConfigurationSetting", "value") => {
                Some(Self::ConfigurationSetting(name))
            }
            ("LocalResources", "LocalResource", "path") => Some(Self::LocalResourcePath(name)),
            ("LocalResources", "LocalResource", "sizeInMB") => Some(Self::LocalResourceSize(name)),
            ("Endpoints", "Endpoint", "address") => Some(Self::EndpointAddress(name)),
            ("Endpoints", "Endpoint", "port") => Some(Self::EndpointPort(name)),
            ("Endpoints", "Endpoint", "protocol") => Some(Self::EndpointProtocol(name)),
            _ => None,
        }
    }
}

/// `@name='X'` or `@name="X"` → `X`.
fn named(predicate: &str) -> Option<String> {
    let value = predicate
        .trim()
        .strip_prefix("@name")?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    let quote = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = value.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.is_empty() && !inner.contains(quote)).then(|| inner.to_owned())
}

#[cfg(test)]
mod tests {
    use super::RoleInstanceXPath as X;

    #[test]
    fn documented_paths_parse() {
        let cases = [
            ("/RoleEnvironment/Deployment/@emulated", Some(X::Emulated)),
            ("/RoleEnvironment/Deployment/@id", Some(X::DeploymentId)),
            ("/RoleEnvironment/CurrentInstance/@id", Some(X::InstanceId)),
            (
                "/RoleEnvironment/CurrentInstance/@faultDomain",
                Some(X::FaultDomain),
            ),
            (
                "/RoleEnvironment/CurrentInstance/Endpoints/Endpoint[@name='Http']/@port",
                Some(X::EndpointPort("Http".into())),
            ),
            (
                "/RoleEnvironment/CurrentInstance/Endpoints/Endpoint[@name=\"Http\"]/@address",
                Some(X::EndpointAddress("Http".into())),
            ),
            (
                "/RoleEnvironment/CurrentInstance/ConfigurationSettings/ConfigurationSetting[@name='A.B']/@value",
                Some(X::ConfigurationSetting("A.B".into())),
            ),
            (
                "/RoleEnvironment/CurrentInstance/LocalResources/LocalResource[@name='Temp']/@path",
                Some(X::LocalResourcePath("Temp".into())),
            ),
            (
                "/RoleEnvironment/CurrentInstance/Endpoints/Endpoint[@name='Http']/@publicPort",
                None,
            ),
            ("/RoleEnvironment/Deployment/@name", None),
            (
                "/RoleEnvironment/CurrentInstance/Endpoints/Endpoint[@name='']/@port",
                None,
            ),
        ];
        for (xpath, expected) in cases {
            assert_eq!(X::parse(xpath), expected, "{xpath}");
        }
    }
}
