/* node-lifecycle 0.2.0, linux_arm64_gnu: shipped library present */
