# Deployment: container image, Kubernetes manifests, systemd unit (issue 5). Included by
# the top-level CMakeLists.txt. Each script exits 0 on success, 1 on failure and 77 when
# something it needs is missing (a failure instead under CI=true).
set(EXECFLOW_DEPLOY_TESTS_DIR ${CMAKE_SOURCE_DIR}/tests/e2e)

# kubectl kustomize renders every overlay; every object validates against its kind's
# schema (strict: unknown fields fail); least-privilege assertions; checker self-test.
add_test(NAME deploy_kubernetes
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/deploy_kubernetes.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_kubernetes PROPERTIES LABELS "e2e" TIMEOUT 300 SKIP_RETURN_CODE 77)

# systemd-analyze verify and security (offline) on the unit, and on execflow.socket with the
# service's systemd-socket drop-in.
add_test(NAME deploy_systemd_verify
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/deploy_systemd.sh verify
                 $<TARGET_FILE:execflow_exporter>)
set_tests_properties(deploy_systemd_verify PROPERTIES LABELS "e2e" TIMEOUT 60 SKIP_RETURN_CODE 77)

# The unit under a real systemd (privileged podman container): credentials, exact exec
# counts, restart on failure, clean stop; then socket activation through execflow.socket:
# started by the first connection, same credentials, exact counts, clean stop.
add_test(NAME deploy_systemd_run
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/deploy_systemd.sh run
                 $<TARGET_FILE:execflow_exporter>)
set_tests_properties(deploy_systemd_run PROPERTIES LABELS "e2e" TIMEOUT 600 SKIP_RETURN_CODE 77
                     RESOURCE_LOCK podman_base_image)

# podman build of deploy/container/Containerfile (base image by debootstrap when no
# registry), then a least-privilege, read-only run that must count exec exactly.
add_test(NAME deploy_container
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/deploy_container.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_container PROPERTIES LABELS "e2e" TIMEOUT 1500 SKIP_RETURN_CODE 77
                     RESOURCE_LOCK podman_base_image PROCESSORS 2)

# The DaemonSet's pod template (base, legacy-kernel, privileged), rendered by kustomize,
# run with `podman kube play`: capabilities, read-only mounts, ConfigMap config, exact
# exec counts. Reuses the image deploy_container built (builds it if absent).
add_test(NAME deploy_kubernetes_pod
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/deploy_kubernetes_pod.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_kubernetes_pod PROPERTIES LABELS "e2e" TIMEOUT 1500 SKIP_RETURN_CODE 77
                     RESOURCE_LOCK podman_base_image DEPENDS deploy_container)

# deploy/container/make-multiarch-image.sh: one manifest list with linux/amd64 (the
# Containerfile) and linux/arm64 (the cross build, copied into the same Containerfile's
# last stage: no RUN, nothing arm64 runs on the host). The arm64 image, unpacked from the
# list as pushed, runs chrooted in an arm64 6.12 guest (tests/vm, qemu TCG) and must count
# execs exactly.
add_test(NAME deploy_multiarch
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/deploy_multiarch.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_multiarch PROPERTIES LABELS "e2e" TIMEOUT 2400 SKIP_RETURN_CODE 77
                     RESOURCE_LOCK podman_base_image PROCESSORS 2)

# The README's install, build and test on Debian 13: a pristine trixie container
# (privileged) installs the packages, builds with -Werror and runs the unit, privileged
# and exporter end-to-end tests against trixie's libraries.
add_test(NAME debian13
         COMMAND bash ${EXECFLOW_DEPLOY_TESTS_DIR}/debian13.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(debian13 PROPERTIES LABELS "e2e;privileged" TIMEOUT 1800 SKIP_RETURN_CODE 77
                     RESOURCE_LOCK podman_base_image PROCESSORS 2)
