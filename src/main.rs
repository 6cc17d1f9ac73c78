fn main() {
    std::process::exit(cargo_infer::cli::main(std::env::args_os().collect()));
}
