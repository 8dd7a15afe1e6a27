using Spectre.Console.Cli;
using XNet.Cli;
using XNet.Cli.Commands;

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("xnet");
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train an X-Net on Fashion-MNIST/MNIST idx files (the embedded subset by default), evaluate it with ML.NET's metrics and save it.")
        .WithExample("train")
        .WithExample("train", "--data", "/usr/share/datasets/fashion-mnist", "--model", "x-resnet-20-4", "--epochs", "10");
    config.AddCommand<PredictCommand>("predict")
        .WithDescription("Classify one image file with a saved model.")
        .WithExample("predict", "--model", "xnet-model.xnet", "--image", "shoe.png");
    config.AddCommand<ModelsCommand>("models")
        .WithDescription("List the architectures of the model zoo with their parameter counts.");
    config.PropagateExceptions();
});

return CliErrors.Run(() => app.Run(args));
