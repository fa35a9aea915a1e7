"""One module per ``edgemoe`` subcommand: HELP, add_arguments(parser), run(args) -> int."""
