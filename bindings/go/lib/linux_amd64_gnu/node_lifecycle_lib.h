/* node-lifecycle 0.3.0, linux_amd64_gnu: shipped library present */
