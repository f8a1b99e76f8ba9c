//! `cep user …`: the console's users. A password is read from standard input with
//! `--password-stdin`, or generated and printed once; it never comes from an argument
//! (arguments show in process lists and shell history).

use anyhow::Context as _;
use cep_shared::vocabulary::Role;
use cep_workers::Ctx;
use cep_workers::console::{audit, users};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a console user: viewer reads, operator acts on the business (tasks, meetings,
    /// invoices, posts), admin also on the fleet and on users.
    Add {
        email: String,
        #[arg(long)]
        role: Role,
        /// Read the password from the first line of standard input instead of
        /// generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (generated and printed, or from standard input); the user's
    /// sessions end.
    Passwd {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their sessions end and they cannot sign in.
    Disable { email: String },
    /// Every user with their role.
    List,
}

/// The password: standard input's first line, or a generated one (printed after).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((users::generate_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    Ok((p, false))
}

impl UserCommand {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self {
            UserCommand::Add {
                email,
                role,
                password_stdin,
            } => {
                let (p, generated) = password(password_stdin)?;
                let u = users::add(ctx, &email, role, &p).await?;
                let after = serde_json::json!({ "email": u.email, "role": u.role });
                audit::record(ctx, "cli", "user.add", &u.id, None, Some(after)).await?;
                println!("{} added as {}", u.email, u.role);
                if generated {
                    println!("password: {p}");
                }
            }
            UserCommand::Passwd {
                email,
                password_stdin,
            } => {
                let (p, generated) = password(password_stdin)?;
                users::set_password(ctx, &email, &p).await?;
                let (u, _, _) = users::find(ctx, &users::email(&email)?).await?;
                audit::record(ctx, "cli", "user.passwd", &u.id, None, None).await?;
                println!("{}'s password is set; their sessions ended", u.email);
                if generated {
                    println!("password: {p}");
                }
            }
            UserCommand::Disable { email } => {
                let changed = users::disable(ctx, &email).await?;
                let (u, _, _) = users::find(ctx, &users::email(&email)?).await?;
                if changed {
                    let after = serde_json::json!({ "disabled": true });
                    audit::record(ctx, "cli", "user.disable", &u.id, None, Some(after)).await?;
                }
                println!(
                    "{} {}",
                    u.email,
                    if changed {
                        "is disabled"
                    } else {
                        "was disabled already"
                    }
                );
            }
            UserCommand::List => {
                println!("email\trole\tdisabled");
                for (email, role, disabled) in users::list(ctx).await? {
                    println!("{email}\t{role}\t{}", if disabled { "yes" } else { "no" });
                }
            }
        }
        Ok(())
    }
}
