//! Errors as the user sees them: the whole chain, and the exit code (2 for bad input or usage,
//! 1 for a failure, 130 when interrupted).

use std::process::ExitCode;

/// A usage mistake the command line parser cannot see (flags that do not go together, a
/// settings file that cannot be read).
#[derive(Debug)]
pub struct UsageError(pub String);

/// The command stopped because it was told to (Ctrl-C or SIGTERM); what it finished is kept.
#[derive(Debug)]
pub struct Interrupted(pub String);

macro_rules! message_error {
    ($($t:ty),*) => {
        $(impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for $t {})*
    };
}

message_error!(UsageError, Interrupted);

/// Whether any error in the chain is the user's input, by each crate's own judgement.
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UsageError>()
            || e.downcast_ref::<corpus::Error>()
                .is_some_and(corpus::Error::is_bad_input)
            || e.downcast_ref::<crawler::Error>()
                .is_some_and(crawler::Error::is_bad_input)
            || e.downcast_ref::<cleaner::Error>()
                .is_some_and(cleaner::Error::is_bad_input)
            || e.downcast_ref::<images::Error>()
                .is_some_and(images::Error::is_bad_input)
            || e.downcast_ref::<dedup::Error>()
                .is_some_and(dedup::Error::is_bad_input)
            || e.downcast_ref::<tokenizer::Error>()
                .is_some_and(tokenizer::Error::is_bad_input)
            || e.is::<tokenizer::InvalidTokenizer>()
            || e.is::<tokenizer::train::ConfigError>()
            || e.downcast_ref::<train::TrainError>()
                .is_some_and(train::TrainError::is_bad_input)
            || e.downcast_ref::<pipeline::Error>()
                .is_some_and(pipeline::Error::is_bad_input)
    })
}

/// Prints `error: ...` with each cause on its own line, and gives the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        // the reader went away (`| head`): not an error of ours
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {err}");
    let mut said = err.to_string();
    for cause in err.chain().skip(1) {
        // an error that shows its cause in its own message is not repeated
        let text = cause.to_string();
        if !said.contains(&text) {
            eprintln!("  caused by: {text}");
            said.push_str(&text);
        }
    }
    ExitCode::from(status(err))
}

/// The exit status an error gives: 130 interrupted, 2 the user's input, 1 anything else.
pub fn status(err: &anyhow::Error) -> u8 {
    let interrupted = |e: &(dyn std::error::Error + 'static)| {
        e.is::<Interrupted>()
            || matches!(
                e.downcast_ref::<pipeline::Error>(),
                Some(pipeline::Error::Interrupted(_))
            )
    };
    if err.chain().any(interrupted) {
        130
    } else if is_bad_input(err) {
        2
    } else {
        1
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(broken)
            || matches!(e.downcast_ref::<corpus::Error>(), Some(corpus::Error::Io(e)) if broken(e))
    })
}
