import WaybillCLI

await WaybillCommand.runMain()
