fn main() -> std::process::ExitCode {
    edgeplan_cli::main()
}
