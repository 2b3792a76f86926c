/** The operator's version, reported by `--version`, the User-Agent and the build-info metric. */
export const VERSION = "0.1.0";
