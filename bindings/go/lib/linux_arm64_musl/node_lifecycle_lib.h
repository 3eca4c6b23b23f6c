/* node-lifecycle 0.3.0, linux_arm64_musl: shipped library present */
