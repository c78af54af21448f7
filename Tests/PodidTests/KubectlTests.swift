import Foundation
import Simulators
import Testing

/// The real kubectl (Debian's 1.20 and a current one, which `make test` installs into .tools and
/// .venv) against the Kubernetes simulator: the story in docs/simulators.md.
@Suite("kubectl against the Kubernetes simulator", .timeLimit(.minutes(5)))
struct KubectlTests {
    @Test("apply, get, describe, re-apply and delete; the labelled pod's assignment reaches Assigned, a missing identity's stays Created",
          arguments: KubectlClient.allCases)
    func story(client: KubectlClient) async throws {
        try await KubectlSession.withHome { home in try await withSimulators { sims in
            sims.kube.configure { $0.assignDelayMs = 200 }
            let kubectl = client.session(server: sims.kubeURL, home: home)
            let identity = try await send("PUT", AzureSimulatorTests.identityURL(sims.azureURL, "payments-api"), body: #"{"location":"westeurope"}"#)
            let clientID = try #require(identity.json[["properties", "clientId"]]?.string)
            let resourceID = try #require(identity.json["id"]?.string)
            let objects = """
                apiVersion: aadpodidentity.k8s.io/v1
                kind: AzureIdentity
                metadata:
                  name: payments-api
                  namespace: aad-broker
                spec:
                  type: 0
                  resourceID: \(resourceID)
                  clientID: \(clientID)
                ---
                apiVersion: aadpodidentity.k8s.io/v1
                kind: AzureIdentityBinding
                metadata:
                  name: payments-api-binding
                  namespace: aad-broker
                spec:
                  azureIdentity: payments-api
                  selector: payments-api
                ---
                apiVersion: aadpodidentity.k8s.io/v1
                kind: AzureIdentity
                metadata:
                  name: ghost
                  namespace: aad-broker
                spec:
                  type: 0
                  resourceID: /subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ghost
                  clientID: 22222222-2222-2222-2222-222222222222
                ---
                apiVersion: aadpodidentity.k8s.io/v1
                kind: AzureIdentityBinding
                metadata:
                  name: ghost-binding
                  namespace: aad-broker
                spec:
                  azureIdentity: ghost
                  selector: payments-api
                """
            let pod = """
                apiVersion: v1
                kind: Namespace
                metadata:
                  name: payments
                ---
                apiVersion: v1
                kind: Pod
                metadata:
                  name: api-0
                  namespace: payments
                  labels:
                    aadpodidbinding: payments-api
                spec:
                  containers:
                  - name: api
                    image: nginx
                """
            let objectsFile = home.appendingPathComponent("identity.yaml")
            let podFile = home.appendingPathComponent("pod.yaml")
            try objects.write(to: objectsFile, atomically: true, encoding: .utf8)
            try pod.write(to: podFile, atomically: true, encoding: .utf8)

            let applied = try await kubectl.run("apply", "-f", objectsFile.path)
            #expect(applied.0 == 0, "\(applied.1)")
            #expect(applied.1.contains("azureidentity.aadpodidentity.k8s.io/payments-api created"))
            let listed = try await kubectl.run("get", "azureidentities,azureidentitybindings", "-A")
            #expect(listed.0 == 0, "\(listed.1)")
            #expect(listed.1.contains("payments-api") && listed.1.contains("ghost-binding"))
            #expect(listed.1.contains("CLIENTID") && listed.1.contains(clientID), "the CRDs' printer columns, printed server-side")

            let podApplied = try await kubectl.run("apply", "-f", podFile.path)
            #expect(podApplied.0 == 0, "\(podApplied.1)")
            var yaml = ""
            for _ in 0..<40 {
                try await Task.sleep(for: .milliseconds(250))
                yaml = try await kubectl.run("get", "azureassignedidentities", "-A", "-o", "yaml").1
                if yaml.contains("status: Assigned") { break }
            }
            #expect(yaml.contains("name: api-0-payments-payments-api"))
            #expect(yaml.contains("status: Assigned"))
            let ghost = try await kubectl.run("get", "azureassignedidentities", "-n", "default", "api-0-payments-ghost",
                                             "-o", "jsonpath={.status.status}")
            #expect(ghost.1 == "Created", "an identity that does not exist in Azure stays Created")

            let again = try await kubectl.run("apply", "-f", podFile.path)
            #expect(again.0 == 0, "\(again.1)")
            #expect(again.1.contains("pod/api-0 unchanged"))
            let described = try await kubectl.run("describe", "azureidentity", "-n", "aad-broker", "payments-api")
            #expect(described.0 == 0, "\(described.1)")
            #expect(described.1.contains(clientID))
            let pods = try await kubectl.run("get", "pods", "-A")
            #expect(pods.1.contains("READY") && pods.1.contains("Running") && pods.1.contains("api-0"))
            let podDescribed = try await kubectl.run("describe", "pod", "-n", "payments", "api-0")
            #expect(podDescribed.1.contains("aadpodidbinding=payments-api"))

            // kubectl waits until the namespace has terminated, which a busy machine slows.
            let deleted = try await kubectl.run(["delete", "-f", podFile.path], timeout: .seconds(150))
            #expect(deleted.0 == 0, "\(deleted.1)")
            var remaining = ""
            for _ in 0..<20 {
                try await Task.sleep(for: .milliseconds(250))
                remaining = try await kubectl.run("get", "azureassignedidentities", "-A", "-o", "name").1
                if remaining.isEmpty { break }
            }
            #expect(remaining.isEmpty, "assignments go with the pod: \(remaining)")
            let objectsDeleted = try await kubectl.run("delete", "-f", objectsFile.path)
            #expect(objectsDeleted.0 == 0, "\(objectsDeleted.1)")
            #expect(try await kubectl.run("get", "azureidentities", "-A", "-o", "name").1.isEmpty)
        } }
    }
}
