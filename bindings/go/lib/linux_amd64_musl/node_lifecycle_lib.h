/* node-lifecycle 0.2.0, linux_amd64_musl: shipped library present */
