/* node-lifecycle 0.3.0, linux_amd64_musl: shipped library present */
