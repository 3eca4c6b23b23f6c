/* node-lifecycle 0.2.0, linux_arm64_musl: shipped library present */
