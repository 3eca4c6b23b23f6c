/* node-lifecycle 0.3.0, linux_arm64_gnu: shipped library present */
