//! `weft vhd`: create, inspect, chain, merge, flatten, convert and check VHD
//! images. The work lives in the `weft-vhd` crate.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use weft_vhd::{Chain, ChainOptions, CheckOptions, CreateOptions, DiskType, SizePolicy, VhdImage};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    Fixed,
    Dynamic,
}

impl From<Kind> for DiskType {
    fn from(k: Kind) -> DiskType {
        match k {
            Kind::Fixed => DiskType::Fixed,
            Kind::Dynamic => DiskType::Dynamic,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Raw,
    Fixed,
    Dynamic,
}

#[derive(Debug, clap::Args)]
struct Search {
    /// Directory to search for parent images (after the parent locators);
    /// repeatable
    #[arg(long = "search", value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show an image: type, virtual size, geometry, unique id, parent, blocks
    Info {
        image: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        search: Search,
    },
    /// Create a fixed or dynamic image
    ///
    /// The footer stores a byte size and a CHS geometry, and readers differ in
    /// which they trust (Virtual PC, and qemu for some creator applications,
    /// use the geometry; Hyper-V and libvhdi use the size). By default weft rounds SIZE up to the
    /// smallest size the specification's CHS geometry describes exactly, as
    /// qemu-img does, so every reader sees the same disk and it is never
    /// smaller than asked. --exact-size keeps SIZE (rounded to 512 bytes) and
    /// writes the maximum geometry 65535/16/255 when CHS cannot describe it,
    /// which qemu reads as "use the size" (its force_size convention).
    Create {
        image: PathBuf,
        /// Virtual size: bytes or with a K/M/G/T suffix (binary), e.g. 4G
        #[arg(long, value_parser = parse_size)]
        size: u64,
        #[arg(long = "type", value_enum, default_value = "dynamic")]
        kind: Kind,
        /// Block size of a dynamic image (power of two)
        #[arg(long, value_parser = parse_size, default_value = "2M")]
        block_size: u64,
        /// Keep SIZE exactly instead of rounding up to the CHS geometry
        #[arg(long)]
        exact_size: bool,
    },
    /// Create a differencing image on top of PARENT
    Diff {
        child: PathBuf,
        #[arg(long)]
        parent: PathBuf,
        /// Block size (default: the parent's, or 2M)
        #[arg(long, value_parser = parse_size)]
        block_size: Option<u64>,
    },
    /// Merge a differencing image into its parent (and remove it)
    Merge {
        child: PathBuf,
        /// Keep the child file (its data is now in the parent)
        #[arg(long)]
        keep_child: bool,
        #[command(flatten)]
        search: Search,
    },
    /// Write a chain's contents into one new fixed or dynamic image
    Flatten {
        image: PathBuf,
        output: PathBuf,
        #[arg(long = "type", value_enum, default_value = "dynamic")]
        kind: Kind,
        #[arg(long, value_parser = parse_size, default_value = "2M")]
        block_size: u64,
        #[command(flatten)]
        search: Search,
    },
    /// Convert between raw and VHD (input format detected)
    ///
    /// A VHD input (any chain) becomes raw, or with --to fixed/dynamic a new
    /// VHD; a raw input becomes a dynamic VHD unless --to says otherwise.
    /// Zero and unallocated data is not written: raw output is sparse,
    /// dynamic output leaves those blocks unallocated.
    Convert {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, value_enum)]
        to: Option<Format>,
        #[arg(long, value_parser = parse_size, default_value = "2M")]
        block_size: u64,
        #[command(flatten)]
        search: Search,
    },
    /// Check an image's structures and parent; exit status 1 on errors
    Check {
        image: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        search: Search,
    },
    /// Write the chain's bytes (raw) to stdout or a file
    Cat {
        image: PathBuf,
        #[arg(long, value_parser = parse_size, default_value = "0")]
        offset: u64,
        /// Bytes to write (default: to the end of the disk)
        #[arg(long, value_parser = parse_size)]
        length: Option<u64>,
        /// Write here instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        search: Search,
    },
}

/// Parse `4096`, `10M`, `4G`, `1GiB`, `512K` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("invalid size suffix in {s:?} (use K, M, G or T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn block_size(v: u64) -> anyhow::Result<u32> {
    u32::try_from(v).with_context(|| format!("block size {v} is too large"))
}

fn chain_options(search: Search) -> ChainOptions {
    ChainOptions {
        search_dirs: search.dirs,
        ..ChainOptions::default()
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Info {
            image,
            json,
            search,
        } => info(&image, json, search),
        Command::Create {
            image,
            size,
            kind,
            block_size: bs,
            exact_size,
        } => {
            let img = weft_vhd::create(
                &image,
                &CreateOptions {
                    disk_type: kind.into(),
                    size,
                    block_size: block_size(bs)?,
                    size_policy: if exact_size {
                        SizePolicy::Exact
                    } else {
                        SizePolicy::RoundUpToGeometry
                    },
                    unique_id: None,
                },
            )?;
            if img.size() != size {
                eprintln!(
                    "note: size rounded up from {size} to {} bytes to match the CHS geometry",
                    img.size()
                );
            }
            println!(
                "created {} ({} {} bytes, id {})",
                image.display(),
                img.disk_type(),
                img.size(),
                img.footer().unique_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff {
            child,
            parent,
            block_size: bs,
        } => {
            let img = weft_vhd::create_differencing(
                &child,
                &parent,
                &weft_vhd::DiffOptions {
                    block_size: bs.map(block_size).transpose()?,
                    unique_id: None,
                },
            )?;
            println!(
                "created {} (differencing over {}, id {})",
                child.display(),
                parent.display(),
                img.footer().unique_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge {
            child,
            keep_child,
            search,
        } => {
            let r = weft_vhd::merge(
                &child,
                &weft_vhd::MergeOptions {
                    search_dirs: search.dirs,
                    keep_child,
                },
            )?;
            println!(
                "merged {} bytes from {} into {}{}",
                r.bytes_merged,
                child.display(),
                r.parent.display(),
                if r.child_removed {
                    "; child removed"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Flatten {
            image,
            output,
            kind,
            block_size: bs,
            search,
        } => {
            let img =
                weft_vhd::flatten(&image, &output, kind.into(), block_size(bs)?, &search.dirs)?;
            println!(
                "wrote {} ({} {} bytes)",
                output.display(),
                img.disk_type(),
                img.size()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            input,
            output,
            to,
            block_size: bs,
            search,
        } => {
            let input_is_vhd = weft_vhd::is_vhd(&input);
            match (input_is_vhd, to) {
                (true, None | Some(Format::Raw)) => {
                    let n = weft_vhd::convert_to_raw(&input, &output, &search.dirs)?;
                    println!("wrote {} (raw, {n} bytes)", output.display());
                }
                (true, Some(f)) => {
                    let kind = if matches!(f, Format::Fixed) {
                        DiskType::Fixed
                    } else {
                        DiskType::Dynamic
                    };
                    let img =
                        weft_vhd::flatten(&input, &output, kind, block_size(bs)?, &search.dirs)?;
                    println!(
                        "wrote {} ({} {} bytes)",
                        output.display(),
                        img.disk_type(),
                        img.size()
                    );
                }
                (false, Some(Format::Raw)) => anyhow::bail!("{} is already raw", input.display()),
                (false, f) => {
                    let kind = if matches!(f, Some(Format::Fixed)) {
                        DiskType::Fixed
                    } else {
                        DiskType::Dynamic
                    };
                    let img = weft_vhd::convert_from_raw(
                        &input,
                        &output,
                        &CreateOptions {
                            disk_type: kind,
                            size: 0,
                            block_size: block_size(bs)?,
                            size_policy: SizePolicy::RoundUpToGeometry,
                            unique_id: None,
                        },
                    )?;
                    println!(
                        "wrote {} ({} {} bytes)",
                        output.display(),
                        img.disk_type(),
                        img.size()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            image,
            json,
            search,
        } => {
            let report = weft_vhd::check(
                &image,
                &CheckOptions {
                    search_dirs: search.dirs,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for f in &report.findings {
                    println!("{}: {}: {}", f.severity, f.code, f.message);
                }
            }
            Ok(if report.has_errors() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Cat {
            image,
            offset,
            length,
            output,
            search,
        } => cat(&image, offset, length, output.as_deref(), search),
    }
}

fn info(path: &Path, json: bool, search: Search) -> anyhow::Result<ExitCode> {
    let img = VhdImage::open(path, &weft_vhd::OpenOptions::default())?;
    let f = img.footer();
    let h = img.header();
    let chain: Vec<String> = if img.disk_type() == DiskType::Differencing {
        match Chain::open(path, &chain_options(search)) {
            Ok(c) => c
                .images()
                .iter()
                .map(|i| i.path().display().to_string())
                .collect(),
            Err(e) => vec![format!("unresolved: {e}")],
        }
    } else {
        vec![path.display().to_string()]
    };
    let value = serde_json::json!({
        "path": path.display().to_string(),
        "type": img.disk_type(),
        "virtual_size": img.size(),
        "geometry": f.geometry,
        "unique_id": f.unique_id,
        "creator_app": f.creator_app_str(),
        "timestamp": f.timestamp,
        "block_size": img.block_size(),
        "allocated_blocks": h.map(|_| img.allocated_blocks()),
        "total_blocks": h.map(|h| h.max_table_entries),
        "parent_name": h.filter(|_| img.disk_type() == DiskType::Differencing).map(|h| h.parent_name.clone()),
        "parent_unique_id": h.filter(|_| img.disk_type() == DiskType::Differencing).map(|h| h.parent_unique_id),
        "chain": chain,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:             {}", path.display());
    println!("type:             {}", img.disk_type());
    println!("virtual size:     {} bytes", img.size());
    println!(
        "geometry:         {}/{}/{} (cylinders/heads/sectors)",
        f.geometry.cylinders, f.geometry.heads, f.geometry.sectors_per_track
    );
    println!("unique id:        {}", f.unique_id);
    println!("creator:          {:?}", f.creator_app_str());
    if let Some(h) = h {
        println!("block size:       {} bytes", h.block_size);
        println!(
            "allocated blocks: {} of {}",
            img.allocated_blocks(),
            h.max_table_entries
        );
        if img.disk_type() == DiskType::Differencing {
            println!("parent name:      {}", h.parent_name);
            println!("parent id:        {}", h.parent_unique_id);
            println!("chain:            {}", chain.join(" -> "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cat(
    path: &Path,
    offset: u64,
    length: Option<u64>,
    output: Option<&Path>,
    search: Search,
) -> anyhow::Result<ExitCode> {
    let chain = Chain::open(path, &chain_options(search))?;
    let size = chain.size();
    anyhow::ensure!(
        offset <= size,
        "offset {offset} is past the end of the {size}-byte disk"
    );
    let len = length.unwrap_or(size - offset);
    anyhow::ensure!(
        len <= size - offset,
        "{len} bytes at offset {offset} run past the end of the {size}-byte disk"
    );
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .with_context(|| format!("failed to create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        chain.read_at(&mut buf[..n], offset + done)?;
        out.write_all(&buf[..n]).context("failed to write output")?;
        done += n as u64;
    }
    out.flush().context("failed to write output")?;
    Ok(ExitCode::SUCCESS)
}
