//! Finding a differencing disk's parent: by its locators first, then by its
//! recorded file name next to the child and in the search directories, then
//! by scanning the search directories for a `.vhd` with the right unique id.
//! A candidate whose unique id differs from the one the child records is
//! never accepted.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{Result, VhdError};
use crate::footer::{FOOTER_SIZE, Footer};
use crate::header::{PLATFORM_W2KU, PLATFORM_W2RU};
use crate::image::VhdImage;

/// Read just the unique id of a VHD (trailing footer, or the copy at 0).
pub fn read_unique_id(path: &Path) -> Option<Uuid> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len < FOOTER_SIZE as u64 {
        return None;
    }
    let mut buf = [0u8; FOOTER_SIZE];
    for at in [len - FOOTER_SIZE as u64, 0] {
        if file.read_exact_at(&mut buf, at).is_ok()
            && let Ok(f) = Footer::parse(&buf)
        {
            return Some(f.unique_id);
        }
    }
    None
}

/// A locator's text as a host path: backslashes become slashes, a `.\`
/// prefix is dropped.
fn host_path(text: &str) -> PathBuf {
    let s = text.replace('\\', "/");
    PathBuf::from(s.strip_prefix("./").unwrap_or(&s))
}

/// Candidate paths for the parent of `child`, in the order they are tried.
pub fn parent_candidates(child: &VhdImage, search_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let Some(header) = child.header() else {
        return Vec::new();
    };
    let child_dir = child
        .path()
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut out = Vec::new();
    for code in [PLATFORM_W2RU, PLATFORM_W2KU] {
        for (i, l) in header.locators.iter().enumerate() {
            if l.platform_code != code {
                continue;
            }
            if let Ok(Some(text)) = child.locator_path(i) {
                let p = host_path(&text);
                out.push(if p.is_absolute() {
                    p
                } else {
                    child_dir.join(p)
                });
            }
        }
    }
    let name = host_path(&header.parent_name);
    if let Some(file_name) = name.file_name() {
        out.push(child_dir.join(file_name));
        for dir in search_dirs {
            out.push(dir.join(file_name));
        }
    }
    for dir in search_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("vhd")))
            .collect();
        found.sort();
        out.extend(found);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Find the file holding the parent of the differencing disk `child`.
pub fn find_parent(child: &VhdImage, search_dirs: &[PathBuf]) -> Result<PathBuf> {
    let header = child.header().ok_or_else(|| {
        VhdError::InvalidArgument(format!(
            "{} is not a differencing disk",
            child.path().display()
        ))
    })?;
    let want = header.parent_unique_id;
    let mut tried = Vec::new();
    for cand in parent_candidates(child, search_dirs) {
        if !cand.is_file() {
            tried.push(format!("{} (missing)", cand.display()));
            continue;
        }
        match read_unique_id(&cand) {
            Some(id) if id == want => {
                tracing::debug!(child = %child.path().display(), parent = %cand.display(), "resolved parent");
                return Ok(cand);
            }
            Some(id) => tried.push(format!(
                "{} (unique id {id} does not match)",
                cand.display()
            )),
            None => tried.push(format!("{} (not a vhd)", cand.display())),
        }
    }
    Err(VhdError::ParentNotFound {
        child: child.path().to_path_buf(),
        parent_name: header.parent_name.clone(),
        parent_id: want,
        tried,
    })
}
